// Counters of the SFU, rendered as Prometheus text. Gauges (rooms, peers, tracks) and traffic
// totals are read at scrape time from the live objects; only events are counted here.
import type { RecoveryTotals, WorkerFigures } from './engine.ts';

export class Metrics {
  droppedCandidates = { signaling: 0, sdp: 0, ice_check: 0 };
  glareOffersIgnored = 0;
  rejectedMessages = new Map<string, number>();
  refusedJoins = 0;
  resumes = 0;
  credentialRefreshes = 0;
  dataMessagesRelayed = 0;
  dataMessagesDropped = 0;

  reject(code: string): void {
    this.rejectedMessages.set(code, (this.rejectedMessages.get(code) ?? 0) + 1);
  }

  droppedTotal(): number {
    const d = this.droppedCandidates;
    return d.signaling + d.sdp + d.ice_check;
  }

  render(live: {
    namespace: string;
    draining: boolean;
    rooms: number;
    peers: number;
    detached: number;
    tracks: number;
    subscriptions: number;
    mediaSections: number;
    mediaSectionsMax: number;
    heapUsedBytes: number;
    residentBytes: number;
    bytesIn: number;
    packetsIn: number;
    bytesOut: number;
    packetsOut: number;
    keyframeRequests: number;
    recovery?: RecoveryTotals;
    engine: string;
    workers: WorkerFigures[];
  }): string {
    const ns = `namespace="${live.namespace}"`;
    const out: string[] = [];
    const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}{${[ns, labels].filter(Boolean).join(',')}} ${value}`);
    };
    metric('orama_sfu_engine', 'gauge', 'The media engine this SFU runs (label engine)', [[`engine="${live.engine}"`, 1]]);
    metric(
      'orama_sfu_worker_cpu_seconds_total',
      'counter',
      'CPU time of each media worker (mediasoup: its C++ workers; werift: the SFU process)',
      live.workers.flatMap((w) => [[`pid="${w.pid}",mode="user"`, w.cpuUserMs / 1000], [`pid="${w.pid}",mode="system"`, w.cpuSystemMs / 1000]] as [string, number][]),
    );
    metric('orama_sfu_worker_rooms', 'gauge', 'Rooms with a router on each media worker', live.workers.map((w) => [`pid="${w.pid}"`, w.rooms]));
    metric('orama_sfu_worker_consumers', 'gauge', 'Consumers (forwarded streams) on each media worker', live.workers.map((w) => [`pid="${w.pid}"`, w.consumers]));
    metric('orama_sfu_draining', 'gauge', '1 while the SFU drains', [['', live.draining ? 1 : 0]]);
    metric('orama_sfu_rooms', 'gauge', 'Rooms with at least one peer', [['', live.rooms]]);
    metric('orama_sfu_peers', 'gauge', 'Joined peers', [['', live.peers]]);
    metric('orama_sfu_detached_peers', 'gauge', 'Peers whose signaling socket closed, waiting for a resume', [['', live.detached]]);
    metric('orama_sfu_tracks', 'gauge', 'Published tracks', [['', live.tracks]]);
    metric('orama_sfu_subscriptions', 'gauge', 'Forwarded streams (track x subscriber)', [['', live.subscriptions]]);
    metric('orama_sfu_media_sections', 'gauge', 'Audio/video m-lines on all peer connections, stopped ones included', [['', live.mediaSections]]);
    metric('orama_sfu_media_sections_max', 'gauge', 'Audio/video m-lines on the peer connection that has most', [['', live.mediaSectionsMax]]);
    metric('orama_sfu_heap_used_bytes', 'gauge', 'V8 heap in use by the SFU process', [['', live.heapUsedBytes]]);
    metric('orama_sfu_resident_memory_bytes', 'gauge', 'Resident memory of the SFU process', [['', live.residentBytes]]);
    metric('orama_sfu_rtp_bytes_in_total', 'counter', 'RTP bytes received from publishers', [['', live.bytesIn]]);
    metric('orama_sfu_rtp_packets_in_total', 'counter', 'RTP packets received from publishers', [['', live.packetsIn]]);
    metric('orama_sfu_rtp_bytes_out_total', 'counter', 'RTP bytes forwarded to subscribers', [['', live.bytesOut]]);
    metric('orama_sfu_rtp_packets_out_total', 'counter', 'RTP packets forwarded to subscribers', [['', live.packetsOut]]);
    metric(
      'orama_sfu_dropped_candidates_total',
      'counter',
      'Remote ICE candidates and checks dropped because the address is not a TURN relay address',
      Object.entries(this.droppedCandidates).map(([where, n]) => [`where="${where}"`, n]),
    );
    metric('orama_sfu_keyframe_requests_total', 'counter', 'PLIs sent to publishers', [['', live.keyframeRequests]]);
    if (live.recovery) {
      const r = live.recovery;
      metric('orama_sfu_nacks_total', 'counter', 'NACKs (RTCP generic NACK packets): sent to publishers, received from subscribers (mediasoup)', [['direction="to_publishers"', r.nacksSent], ['direction="from_subscribers"', r.nacksReceived]]);
      metric('orama_sfu_rtp_packets_repaired_total', 'counter', 'Lost packets from publishers recovered by retransmission (mediasoup)', [['', r.packetsRepaired]]);
      metric('orama_sfu_rtp_packets_retransmitted_total', 'counter', 'Packets retransmitted to subscribers on their NACKs (mediasoup)', [['', r.packetsRetransmitted]]);
    }
    metric('orama_sfu_glare_offers_ignored_total', 'counter', 'Client offers ignored in glare (the SFU is impolite)', [['', this.glareOffersIgnored]]);
    metric('orama_sfu_refused_joins_total', 'counter', 'Joins refused (draining, room full)', [['', this.refusedJoins]]);
    metric('orama_sfu_resumes_total', 'counter', 'Peers taken over by a new signaling socket (resume) after theirs closed', [['', this.resumes]]);
    metric('orama_sfu_credential_refreshes_total', 'counter', 'refresh-credentials messages sent', [['', this.credentialRefreshes]]);
    metric('orama_sfu_data_messages_relayed_total', 'counter', 'Data channel messages relayed to other peers', [['', this.dataMessagesRelayed]]);
    metric('orama_sfu_data_messages_dropped_total', 'counter', 'Data channel messages dropped by the per-peer relay rate limit', [['', this.dataMessagesDropped]]);
    metric(
      'orama_sfu_rejected_messages_total',
      'counter',
      'Signaling frames answered with an error',
      [...this.rejectedMessages].map(([code, n]) => [`code="${code}"`, n]),
    );
    return out.join('\n') + '\n';
  }
}
