// The mediasoup implementation of the media engine (the only file that imports mediasoup's
// runtime). Forwarding, NACK/RTX, PLI/FIR, bandwidth estimation (transport-cc) and simulcast
// layer choice run in mediasoup's C++ workers; Node sees signaling only.
//   - one worker per core (configurable), each with its slice of the namespace's media ports;
//   - a router per room, on the worker with fewest rooms; a room whose worker holds
//     consumersPerWorker consumers gets a router on another worker for its next peers, and
//     producers are piped (pipeToRouter) to the routers of the room that consume them;
//   - one WebRtcTransport per client, both publishing and subscribing, bound to the node's
//     WireGuard address only; SDP in and out through sdp-bridge.ts (the SFU is ICE-lite);
//   - relay-only: mediasoup has no remote-address allowlist, so a transport whose selected ICE
//     tuple's remote address is not a TURN relay address is closed on the spot;
//   - data channels: SCTP data producers/consumers, bridged to the room's relay in Node.
// A worker that dies makes failure() say so (the SFU's /health fails and the process exits for
// systemd to restart it).
import { availableParallelism, networkInterfaces } from 'node:os';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import type { IceCandidateInit } from '../webrtc/protocol.ts';
import type { ConnectionState, Consumer, EngineConnection, EngineOptions, EngineTotals, MediaEngine, MediaKind, Producer, RecoveryTotals, WorkerFigures } from './engine.ts';
import { clientExtensionIds, clientRtpCapabilities, parseOffer, producerParameters, writeDescription, type LocalSection, type LocalTransport, type ParsedOffer } from './sdp-bridge.ts';

/** What the SFU forwards. Payload types as Chrome numbers them, so consumer m-lines rarely differ. */
const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2, preferredPayloadType: 111 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, preferredPayloadType: 96 },
];
/** Data channels per client the SFU listens on (even stream ids: the client is the DTLS client). */
const DATA_STREAMS = [0, 2, 4, 6];
const DCEP_PPID = 50;
/** A video consumer waiting for its first keyframe asks again this often, this many times. */
const KEYFRAME_RETRY_MS = 500;
const KEYFRAME_RETRIES = 40;
/**
 * A publisher's libwebrtc (Chrome's too) ignores a keyframe request that comes within 300 ms of
 * the one before (EncoderRtcpFeedback's min keyframe send interval), and mediasoup asks again only
 * 1 s after an unanswered one: subscribers connecting just after a keyframe waited over a second
 * for theirs (bench:sfu, docs/benchmarks.md). Coalescing a producer's requests to one per 350 ms
 * (mediasoup's keyFrameRequestDelay: the first at once, the ones after it gathered into one at the
 * end of the window) keeps every request the publisher gets outside that window.
 */
export const KEYFRAME_REQUEST_DELAY_MS = 350;
const CLOSE_WAIT_MS = 5000;

export interface MediasoupSettings {
  /** The worker binary; undefined: mediasoup's own (mediasoup.workerBin). */
  workerBin?: string;
  /** 0: one per core. */
  workers: number;
  /** Consumers on a worker before a room's next peer goes to a router on another worker. */
  consumersPerWorker: number;
  /** A worker died: the engine can no longer serve every room. */
  onFailure?: (reason: string) => void;
  /** Events for the SFU's log (room-spilled, pipe-failed); never secrets. */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

/** One of a room's routers: at most one per worker; peers on it publish and consume there. */
interface RoomRouter {
  router: types.Router;
  worker: types.Worker;
  connections: number;
}


export class MediasoupEngine implements MediaEngine {
  readonly name = 'mediasoup' as const;
  readonly simulcast = true;
  readonly headerExtensions = clientExtensionIds(mediasoup.getSupportedRtpCapabilities());
  /** A room's routers, in the order they were made (the first on the worker with fewest rooms). */
  private readonly rooms = new Map<string, RoomRouter[]>();
  /** Placements run one at a time per room (two joins must not both make a router). */
  private readonly placing = new Map<string, Promise<unknown>>();
  /** Live consumers per worker (what placement weighs). */
  private readonly consumersOn = new Map<types.Worker, number>();
  /** Producers already piped to a router: `${producerId} ${routerId}`. */
  private readonly pipes = new Map<string, Promise<void>>();
  readonly connections = new Set<MediasoupConnection>();
  private failed?: string;
  /** Per live producer/consumer id: its figures at the last totals(); and those of closed ones. */
  private lastSamples = new Map<string, EngineTotals>();
  private readonly retired = zeroTotals();

  private constructor(
    readonly options: EngineOptions,
    private readonly pool: types.Worker[],
    private readonly consumersPerWorker: number,
    private readonly onEvent: (event: string, fields: Record<string, unknown>) => void = () => {},
  ) {}

  static async start(options: EngineOptions, settings: MediasoupSettings): Promise<MediasoupEngine> {
    const usable = Object.values(networkInterfaces()).some((list) => list?.some((a) => a.address === options.listenIp));
    if (!usable) throw new Error(`listen_ip ${options.listenIp} is not an address of this host`);
    const count = settings.workers > 0 ? settings.workers : availableParallelism();
    const [min, max] = options.portRange;
    const slice = Math.floor((max - min + 1) / count);
    if (slice < 1) throw new Error(`media ports ${min}-${max} cannot be shared by ${count} mediasoup workers`);
    const workerBin = settings.workerBin ?? mediasoup.workerBin;
    const pool: types.Worker[] = [];
    try {
      for (let i = 0; i < count; i++) {
        // Each worker binds its own slice of the namespace's range (ports are per worker).
        const worker = await mediasoup.createWorker({ workerBin, logLevel: 'warn', appData: { ports: [min + i * slice, min + (i + 1) * slice - 1] } });
        pool.push(worker);
      }
    } catch (error) {
      for (const w of pool) w.close();
      throw new Error(`mediasoup worker ${workerBin} did not start: ${(error as Error).message}`);
    }
    const engine = new MediasoupEngine(options, pool, settings.consumersPerWorker, settings.onEvent);
    for (const worker of pool) {
      engine.consumersOn.set(worker, 0);
      worker.on('died', (error) => {
        engine.failed = `mediasoup worker ${worker.pid} died: ${error.message}`;
        settings.onFailure?.(engine.failed);
      });
    }
    return engine;
  }

  private consumersOf(worker: types.Worker): number {
    return this.consumersOn.get(worker) ?? 0;
  }

  /** Rooms with a router on `worker`. */
  private roomsOf(worker: types.Worker): number {
    let n = 0;
    for (const routers of this.rooms.values()) n += routers.filter((r) => r.worker === worker).length;
    return n;
  }

  /**
   * The router a new peer of `room` goes on: the room's router on the least loaded worker while
   * that worker has fewer than consumersPerWorker consumers; else a new router for the room on
   * the least loaded worker it does not use yet (a room outgrowing one worker); with none left,
   * the least loaded of the room's. A new room starts on the worker with fewest rooms.
   */
  place(room: string): Promise<RoomRouter> {
    const placed = (this.placing.get(room) ?? Promise.resolve()).catch(() => {}).then(() => this.placeNow(room));
    this.placing.set(room, placed);
    return placed;
  }

  private async placeNow(room: string): Promise<RoomRouter> {
    const routers = this.rooms.get(room) ?? [];
    const byConsumers = (a: types.Worker, b: types.Worker) => this.consumersOf(a) - this.consumersOf(b) || this.roomsOf(a) - this.roomsOf(b);
    const current = [...routers].sort((a, b) => byConsumers(a.worker, b.worker))[0];
    const unused = this.pool.filter((w) => !routers.some((r) => r.worker === w));
    let worker: types.Worker | undefined;
    if (!current) worker = [...this.pool].sort((a, b) => this.roomsOf(a) - this.roomsOf(b) || byConsumers(a, b))[0];
    else if (this.consumersOf(current.worker) >= this.consumersPerWorker && unused.length > 0) worker = unused.sort(byConsumers)[0];
    if (!worker) {
      current!.connections++;
      return current!;
    }
    const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
    const entry: RoomRouter = { router, worker, connections: 1 };
    if (current) this.onEvent('room-spilled', { room, worker: worker.pid, routers: routers.length + 1, consumers_on_full_worker: this.consumersOf(current.worker) });
    this.rooms.set(room, [...routers, entry]);
    router.observer.once('close', () => {
      for (const key of this.pipes.keys()) if (key.endsWith(` ${router.id}`)) this.pipes.delete(key);
    });
    return entry;
  }

  /** A peer of the room left its router: the router closes with its last peer. */
  release(room: string, entry: RoomRouter): void {
    if (--entry.connections > 0) return;
    const rest = (this.rooms.get(room) ?? []).filter((r) => r !== entry);
    if (rest.length > 0) this.rooms.set(room, rest);
    else {
      this.rooms.delete(room);
      this.placing.delete(room);
    }
    entry.router.close();
  }

  /**
   * Makes a producer of `from` consumable on `to` (another worker's router of the same room):
   * pipeToRouter, once per producer and router, over loopback inside the namespace's port range.
   * The piped producer keeps its id and closes with the original.
   */
  pipe(room: string, producer: types.Producer, from: RoomRouter, to: RoomRouter): Promise<void> {
    if (from === to) return Promise.resolve();
    const key = `${producer.id} ${to.router.id}`;
    let piped = this.pipes.get(key);
    if (!piped) {
      const [min, max] = this.options.portRange;
      piped = from.router.pipeToRouter({ producerId: producer.id, router: to.router, listenInfo: { protocol: 'udp', ip: '127.0.0.1', portRange: { min, max } } }).then(() => {});
      piped.catch((error: Error) => {
        this.pipes.delete(key);
        this.onEvent('pipe-failed', { room, producer: producer.id, from_worker: from.worker.pid, to_worker: to.worker.pid, error: error.message, retry: 'at the subscriber\'s next offer' });
      });
      producer.observer.once('close', () => this.pipes.delete(key));
      this.pipes.set(key, piped);
    }
    return piped;
  }

  /** A consumer now exists on `worker` (for placement); it counts until it closes. */
  countConsumer(worker: types.Worker, consumer: types.Consumer): void {
    this.consumersOn.set(worker, this.consumersOf(worker) + 1);
    consumer.observer.once('close', () => this.consumersOn.set(worker, this.consumersOf(worker) - 1));
  }

  portsOf(worker: types.Worker): [number, number] {
    return (worker.appData as { ports: [number, number] }).ports;
  }

  createConnection(room: string): EngineConnection {
    const connection = new MediasoupConnection(this, room);
    this.connections.add(connection);
    return connection;
  }

  /**
   * Counters (Prometheus: they never go down). mediasoup counts per producer and consumer, and
   * a closed one's figures go with it: each stream's last sample is kept, and folded into
   * `retired` once the stream is gone (what it did after its last sample is not counted).
   */
  async totals(): Promise<EngineTotals> {
    const live = new Map<string, EngineTotals>();
    await Promise.all([...this.connections].map((c) => c.sampleStats(live)));
    for (const [id, last] of this.lastSamples) if (!live.has(id)) addTotals(this.retired, last);
    this.lastSamples = live;
    const t = { ...this.retired, recovery: { ...this.retired.recovery } };
    for (const sample of live.values()) addTotals(t, sample);
    return t;
  }

  failure(): string | undefined {
    return this.failed;
  }

  async workers(): Promise<WorkerFigures[]> {
    return Promise.all(
      this.pool.map(async (w) => {
        const usage = await w.getResourceUsage().catch(() => ({ ru_utime: 0, ru_stime: 0 }));
        return { pid: w.pid, cpuUserMs: usage.ru_utime, cpuSystemMs: usage.ru_stime, rooms: this.roomsOf(w), consumers: this.consumersOf(w) };
      }),
    );
  }

  async close(): Promise<void> {
    for (const c of [...this.connections]) await c.close();
    for (const w of this.pool) w.close();
  }
}

class MediasoupProducer implements Producer {
  constructor(
    readonly id: string,
    readonly kind: MediaKind,
    readonly layers: number,
    readonly producer: types.Producer,
    /** The router it was produced on (others get it piped). */
    readonly home: RoomRouter,
  ) {}
}

/** A consume() handle: the mediasoup consumer is made at the next SFU offer. */
class MediasoupConsumer implements Consumer {
  consumer?: types.Consumer;
  mid?: string;
  stopped = false;
  private preferred?: number;

  constructor(
    readonly producer: MediasoupProducer,
    readonly streamId: string,
  ) {}

  get kind(): MediaKind {
    return this.producer.kind;
  }

  setPreferredLayer(layer: number): void {
    this.preferred = Math.max(0, Math.min(layer, this.producer.layers - 1));
    if (this.consumer?.type === 'simulcast') void this.consumer.setPreferredLayers({ spatialLayer: this.preferred }).catch(() => {});
  }

  preferredLayers(): types.ConsumerLayers | undefined {
    return this.preferred === undefined ? undefined : { spatialLayer: this.preferred };
  }

  currentLayer(): number | undefined {
    return this.consumer?.currentLayers?.spatialLayer;
  }
}

type SendSection = Extract<LocalSection, { role: 'send' }> & { handle?: MediasoupConsumer; negotiated: boolean };

function zeroTotals(): EngineTotals & { recovery: RecoveryTotals } {
  return { bytesIn: 0, packetsIn: 0, bytesOut: 0, packetsOut: 0, keyframeRequests: 0, recovery: { nacksSent: 0, packetsRepaired: 0, nacksReceived: 0, packetsRetransmitted: 0 } };
}

function addTotals(into: EngineTotals & { recovery: RecoveryTotals }, more: EngineTotals): void {
  into.bytesIn += more.bytesIn;
  into.packetsIn += more.packetsIn;
  into.bytesOut += more.bytesOut;
  into.packetsOut += more.packetsOut;
  into.keyframeRequests += more.keyframeRequests;
  const r = more.recovery;
  if (!r) return;
  into.recovery.nacksSent += r.nacksSent;
  into.recovery.packetsRepaired += r.packetsRepaired;
  into.recovery.nacksReceived += r.nacksReceived;
  into.recovery.packetsRetransmitted += r.packetsRetransmitted;
}

/** Parses a DCEP DATA_CHANNEL_OPEN (RFC 8832): the channel's label. */
export function dcepOpenLabel(message: Buffer): string | undefined {
  if (message.length < 12 || message[0] !== 0x03) return undefined;
  const labelLength = message.readUInt16BE(8);
  return message.subarray(12, 12 + labelLength).toString('utf8');
}

class MediasoupConnection implements EngineConnection {
  onLocalCandidate: (candidate: IceCandidateInit | null) => void = () => {};
  onProducer: (producer: Producer) => void = () => {};
  onData: (label: string, data: string | Buffer) => void = () => {};
  onStateChange: (state: ConnectionState) => void = () => {};

  private state: 'stable' | 'have-local-offer' | 'closed' = 'stable';
  private room?: RoomRouter;
  private transport?: types.WebRtcTransport;
  private local?: LocalTransport;
  private caps?: types.RtpCapabilities;
  private iceUfrag?: string;
  private sections: LocalSection[] = [];
  private pending: MediasoupConsumer[] = [];
  private readonly producers = new Map<string, MediasoupProducer>();
  private version = 1;
  private nextMid = 0;
  private closed = false;
  private inFlight: Promise<unknown> = Promise.resolve();
  /** Data channels: SCTP stream -> label (from the client's DCEP open), and our sender per stream. */
  private direct?: types.DirectTransport;
  private readonly labels = new Map<number, string>();
  private readonly senders = new Map<number, types.DataProducer>();

  constructor(
    private readonly engine: MediasoupEngine,
    private readonly roomName: string,
  ) {}

  get signalingState(): string {
    return this.state;
  }

  /** Runs one signaling operation, tracked for close(). */
  private operation<T>(work: () => Promise<T>): Promise<T> {
    const done = work();
    this.inFlight = Promise.allSettled([this.inFlight, done]);
    return done;
  }

  private async ensureTransport(offer: ParsedOffer): Promise<types.WebRtcTransport> {
    if (this.transport) return this.transport;
    const room = await this.engine.place(this.roomName);
    this.room = room;
    const [min, max] = this.engine.portsOf(room.worker);
    const transport = await room.router.createWebRtcTransport({
      listenInfos: [{ protocol: 'udp', ip: this.engine.options.listenIp, portRange: { min, max } }],
      enableSctp: true,
      initialAvailableOutgoingBitrate: 1_000_000,
    });
    if (this.closed) {
      transport.close();
      throw new Error('connection closed');
    }
    this.transport = transport;
    await transport.setMaxIncomingBitrate(this.engine.options.publisherBitrate).catch(() => {});
    // Outgoing: mediasoup probes a subscriber's bandwidth with padding up to its estimate (tens of
    // Mbit/s through TURN on a LAN). Consumers without simulcast forward whatever the estimate, so
    // the cap only bounds the probing and retransmissions: twice a publisher's bitrate.
    await transport.setMaxOutgoingBitrate(2 * this.engine.options.publisherBitrate).catch(() => {});
    transport.on('iceselectedtuplechange', (tuple) => this.checkTuple(tuple.remoteIp));
    transport.on('icestatechange', (state) => {
      if (state === 'disconnected') this.onStateChange('disconnected');
      if ((state === 'connected' || state === 'completed') && transport.dtlsState === 'connected') this.onStateChange('connected');
    });
    transport.on('dtlsstatechange', (state) => {
      if (state === 'connected' || state === 'connecting' || state === 'failed' || state === 'closed') this.onStateChange(state);
    });
    await transport.connect({ dtlsParameters: offer.dtls });
    this.local = { ice: transport.iceParameters, candidates: transport.iceCandidates, fingerprints: transport.dtlsParameters.fingerprints, sctp: transport.sctpParameters };
    return transport;
  }

  /** Relay-only: the selected pair's remote end must be a TURN relay address, or the transport goes. */
  private checkTuple(remoteIp: string | undefined): void {
    if (remoteIp === undefined || this.engine.options.isAllowedRemote(remoteIp)) return;
    this.engine.options.onDroppedIceCheck(remoteIp);
    this.transport?.close();
    this.onStateChange('failed');
  }

  private async ensureData(transport: types.WebRtcTransport): Promise<void> {
    if (this.direct || !transport.sctpParameters) return;
    const direct = await this.room!.router.createDirectTransport();
    this.direct = direct;
    for (const streamId of DATA_STREAMS) {
      const fromClient = await transport.produceData({ sctpStreamParameters: { streamId, ordered: true } });
      const toNode = await direct.consumeData({ dataProducerId: fromClient.id });
      toNode.on('message', (message, ppid) => void this.receiveData(streamId, message, ppid));
    }
  }

  private async receiveData(streamId: number, message: Buffer, ppid: number): Promise<void> {
    if (ppid === DCEP_PPID) {
      const label = dcepOpenLabel(message);
      if (label === undefined) return;
      this.labels.set(streamId, label);
      const sender = await this.sender(streamId).catch(() => undefined);
      sender?.send(Buffer.from([0x02]), DCEP_PPID); // DATA_CHANNEL_ACK
      return;
    }
    const label = this.labels.get(streamId);
    if (label === undefined) return;
    // PPIDs (RFC 8831): 51 string, 53 binary, 56/57 their empty forms.
    if (ppid === 51) this.onData(label, message.toString('utf8'));
    else if (ppid === 56) this.onData(label, '');
    else if (ppid === 53) this.onData(label, message);
    else if (ppid === 57) this.onData(label, Buffer.alloc(0));
  }

  /**
   * Our sender on the client's stream `streamId`: a direct data producer consumed by the
   * client's transport. The transport numbers its data consumers' streams 0, 1, 2, … in order,
   * so the ones below `streamId` are made (and kept) until it has that number.
   */
  private async sender(streamId: number): Promise<types.DataProducer | undefined> {
    const existing = this.senders.get(streamId);
    if (existing) return existing;
    const transport = this.transport;
    if (!transport || !this.direct) return undefined;
    for (let guard = 0; guard <= streamId && !this.senders.has(streamId); guard++) {
      const producer = await this.direct.produceData();
      const consumer = await transport.consumeData({ dataProducerId: producer.id });
      const id = consumer.sctpStreamParameters?.streamId;
      if (id === undefined) break;
      this.senders.set(id, producer);
    }
    return this.senders.get(streamId);
  }

  acceptOffer(sdp: string): Promise<string> {
    return this.operation(async () => {
      const offer = parseOffer(sdp);
      const transport = await this.ensureTransport(offer);
      if (this.iceUfrag !== undefined && offer.iceUfrag !== this.iceUfrag) {
        // The client restarted ICE: new local credentials.
        this.local!.ice = await transport.restartIce();
      }
      this.iceUfrag = offer.iceUfrag;
      this.caps ??= clientRtpCapabilities(offer, this.room!.router.rtpCapabilities);
      const next: LocalSection[] = [];
      const announced: MediasoupProducer[] = [];
      for (const s of offer.sections) {
        if (/^\d+$/.test(s.mid)) this.nextMid = Math.max(this.nextMid, Number(s.mid) + 1);
        const known = this.sections.find((x) => x.mid === s.mid);
        if (known) {
          if (s.rejected && known.role === 'receive') this.producers.get(s.mid)?.producer.close();
          next.push(s.rejected ? { mid: s.mid, kind: s.kind, role: 'rejected', offered: s.media } : known);
          continue;
        }
        if (s.rejected) next.push({ mid: s.mid, kind: s.kind, role: 'rejected', offered: s.media });
        else if (s.kind === 'application') {
          await this.ensureData(transport);
          next.push(this.direct ? { mid: s.mid, kind: 'application', role: 'data' } : { mid: s.mid, kind: s.kind, role: 'rejected' });
        } else if (s.sending) {
          const rtp = producerParameters(s, this.room!.router.rtpCapabilities);
          const producer = await transport.produce({ kind: s.kind, rtpParameters: rtp, ...(s.kind === 'video' ? { keyFrameRequestDelay: KEYFRAME_REQUEST_DELAY_MS } : {}) });
          const layers = rtp.encodings?.length ?? 1;
          const mp = new MediasoupProducer(s.mid, s.kind, layers, producer, this.room!);
          this.producers.set(s.mid, mp);
          announced.push(mp);
          next.push({ mid: s.mid, kind: s.kind, role: 'receive', rtp, offered: s.media });
        } else {
          // A client m-line that only receives: the SFU sends on m-lines of its own offers.
          next.push({ mid: s.mid, kind: s.kind, role: 'rejected', offered: s.media });
        }
      }
      this.sections = next;
      const answer = writeDescription('answer', ++this.version, this.local!, next);
      for (const p of announced) this.onProducer(p);
      return answer;
    });
  }

  createOffer(): Promise<string> {
    return this.operation(async () => {
      const transport = this.transport;
      if (!transport || !this.caps || !this.room) throw new Error('no transport yet (the client has not offered)');
      for (const handle of this.pending.splice(0)) {
        if (handle.stopped || handle.producer.producer.closed) continue;
        // A producer on another worker's router of the room reaches this one through a pipe; one
        // that failed is tried again at this connection's next offer (the handle stays pending).
        const piped = await this.engine.pipe(this.roomName, handle.producer.producer, handle.producer.home, this.room).then(() => true, () => false);
        if (handle.stopped || handle.producer.producer.closed) continue;
        if (!piped) {
          this.pending.push(handle);
          continue;
        }
        if (!this.room.router.canConsume({ producerId: handle.producer.producer.id, rtpCapabilities: this.caps })) continue;
        const reuse = this.sections.findIndex((x) => x.role === 'send' && !x.active && x.kind === handle.kind && (x as SendSection).negotiated);
        const mid = reuse >= 0 ? this.sections[reuse].mid : String(this.nextMid++);
        const consumer = await transport.consume({
          producerId: handle.producer.producer.id,
          rtpCapabilities: this.caps,
          paused: true,
          mid,
          preferredLayers: handle.preferredLayers(),
        });
        this.engine.countConsumer(this.room.worker, consumer);
        handle.consumer = consumer;
        handle.mid = mid;
        const section: SendSection = { mid, kind: handle.kind, role: 'send', rtp: consumer.rtpParameters, active: true, streamId: handle.streamId, trackId: consumer.id, handle, negotiated: false };
        if (reuse >= 0) this.sections[reuse] = section;
        else this.sections.push(section);
      }
      this.state = 'have-local-offer';
      return writeDescription('offer', ++this.version, this.local!, this.sections);
    });
  }

  acceptAnswer(sdp: string): Promise<void> {
    return this.operation(async () => {
      if (this.state !== 'have-local-offer') throw new Error('no offer outstanding');
      parseOffer(sdp);
      this.state = 'stable';
      for (const s of this.sections) {
        if (s.role !== 'send') continue;
        const send = s as SendSection;
        send.negotiated = true;
        // Created paused: media starts once the client has the m-line (resume asks for a keyframe).
        if (send.active && send.handle?.consumer?.paused) {
          await send.handle.consumer.resume().catch(() => {});
          if (send.kind === 'video') this.untilFirstPacket(send.handle.consumer);
        }
      }
    });
  }

  /**
   * A video consumer forwards nothing before a keyframe, and its resume's keyframe request is
   * lost when the publisher's stream has not reached the SFU yet (a publisher still connecting:
   * Chrome sends no keyframe unasked). Ask again every KEYFRAME_RETRY_MS until it has sent.
   */
  private untilFirstPacket(consumer: types.Consumer): void {
    let tries = 0;
    const timer = setInterval(() => {
      if (consumer.closed || this.closed || ++tries > KEYFRAME_RETRIES) return clearInterval(timer);
      void consumer.getStats().then(
        (stats) => {
          if (stats.some((s) => s.type === 'outbound-rtp' && s.packetCount > 0)) clearInterval(timer);
          else void consumer.requestKeyFrame().catch(() => {});
        },
        () => clearInterval(timer),
      );
    }, KEYFRAME_RETRY_MS);
    timer.unref();
  }

  async addRemoteCandidate(): Promise<void> {
    // ICE-lite: the SFU answers the client's checks; it needs no remote candidates.
  }

  consume(producer: Producer, streamId: string): Consumer {
    const handle = new MediasoupConsumer(producer as MediasoupProducer, streamId);
    this.pending.push(handle);
    return handle;
  }

  stopConsumer(consumer: Consumer): void {
    const handle = consumer as MediasoupConsumer;
    if (handle.stopped) return;
    handle.stopped = true;
    handle.consumer?.close();
    const section = this.sections.find((s) => s.role === 'send' && (s as SendSection).handle === handle) as SendSection | undefined;
    if (section) {
      section.active = false;
      section.negotiated = false;
    }
  }

  sendData(label: string, data: string | Buffer): boolean {
    for (const [streamId, l] of this.labels) {
      if (l !== label) continue;
      const sender = this.senders.get(streamId);
      if (!sender || sender.closed) return false;
      if (typeof data === 'string') sender.send(data.length === 0 ? ' ' : data, data.length === 0 ? 56 : 51);
      else sender.send(data.length === 0 ? Buffer.alloc(1) : data, data.length === 0 ? 57 : 53);
      return true;
    }
    return false;
  }

  selectedRemoteAddress(): string | undefined {
    return this.transport?.iceSelectedTuple?.remoteIp;
  }

  mediaSections(): number {
    return this.sections.filter((s) => s.kind !== 'application').length;
  }

  /** Samples this connection's producers and consumers (mediasoup counts in the worker), by id. */
  async sampleStats(into: Map<string, EngineTotals>): Promise<void> {
    // A consumer's stats also carry its producer's stream (inbound-rtp): counted once, on the producer.
    const streams: { stream: types.Producer | types.Consumer; type: 'inbound-rtp' | 'outbound-rtp' }[] = [
      ...[...this.producers.values()].map((p) => ({ stream: p.producer as types.Producer | types.Consumer, type: 'inbound-rtp' as const })),
      ...this.sections.flatMap((s) => (s.role === 'send' && (s as SendSection).handle?.consumer ? [{ stream: (s as SendSection).handle!.consumer!, type: 'outbound-rtp' as const }] : [])),
    ].filter((x) => !x.stream.closed);
    await Promise.all(
      streams.map(async ({ stream, type }) => {
        const list = (await stream.getStats().catch(() => undefined)) as types.RtpStreamRecvStats[] | undefined;
        if (!list) return;
        const t = zeroTotals();
        for (const entry of list) {
          if (entry.type !== type) continue;
          // mediasoup's stream stats: a received stream's NACK/PLI/FIR counts are those it sent, a
          // sent stream's NACK count those it received.
          if (type === 'inbound-rtp') {
            t.bytesIn += entry.byteCount ?? 0;
            t.packetsIn += entry.packetCount ?? 0;
            t.keyframeRequests += (entry.pliCount ?? 0) + (entry.firCount ?? 0);
            t.recovery.nacksSent += entry.nackCount ?? 0;
            t.recovery.packetsRepaired += entry.packetsRepaired ?? 0;
          } else {
            t.bytesOut += entry.byteCount ?? 0;
            t.packetsOut += entry.packetCount ?? 0;
            t.recovery.nacksReceived += entry.nackCount ?? 0;
            t.recovery.packetsRetransmitted += entry.packetsRetransmitted ?? 0;
          }
        }
        into.set(stream.id, t);
      }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.state = 'closed';
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.inFlight, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    this.engine.connections.delete(this);
    this.direct?.close();
    this.transport?.close();
    if (this.room) this.engine.release(this.roomName, this.room);
  }
}
