// The werift implementation of the media engine (the only file that imports werift): every RTP
// packet passes through JavaScript here (producer -> consumers), one process, no simulcast.
// Gotchas from ../../shared/design/webrtc-facts.md are handled here: no STUN query (werift's
// ICE agent falls back to Google's STUN server; see noDefaultStun),
// ICE bound to one address and a port range, REMB to publishers every second, one serialized
// Buffer per forwarded packet (sendRtp mutates packet objects), header extensions stripped,
// keyframe start detection for VP8.
import { networkInterfaces } from 'node:os';
import {
  MediaStream,
  RTCPeerConnection,
  ReceiverEstimatedMaxBitrate,
  RtcpPayloadSpecificFeedback,
  RtpHeader,
  RtpPacket,
  useAbsSendTime,
  useNACK,
  useOPUS,
  usePLI,
  useREMB,
  useSdesMid,
  useVP8,
  type MediaStreamTrack,
  type RTCDataChannel,
  type RTCRtpTransceiver,
} from 'werift';
import type { IceCandidateInit } from '../webrtc/protocol.ts';
import type {
  ConnectionState,
  EngineConnection,
  EngineOptions,
  EngineTotals,
  Consumer,
  MediaEngine,
  MediaKind,
  Producer,
  WorkerFigures,
} from './engine.ts';

const REMB_INTERVAL_MS = 1000;
/** How long close() waits for a description being applied before it closes anyway. */
const CLOSE_WAIT_MS = 5000;

/**
 * werift picks a connection's ICE port by probing the range — bind, close, bind again
 * (common/network.js findPort) — so two connections gathering at the same moment get the same
 * port, the second bind fails, and that connection answers with no candidate at all: its client
 * never connects. Clients rejoining together after an SFU is lost do exactly that. One
 * connection of an engine gathers at a time (setLocalDescription, a few ms without STUN).
 */
/** Longest one gathering holds up the next (without STUN a gathering takes a few ms). */
export const SERIAL_BOUND_MS = 5000;

export class Serial {
  #tail: Promise<unknown> = Promise.resolve();
  constructor(private readonly boundMs = SERIAL_BOUND_MS) {}
  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work);
    // The next one waits for this one, but not forever: a gathering that never settles must not
    // stop every later connection of the engine from answering.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise((resolve) => {
      timer = setTimeout(resolve, this.boundMs);
      timer.unref();
    });
    this.#tail = Promise.race([result.catch(() => undefined), bound]).finally(() => clearTimeout(timer));
    return result;
  }
}


/** True if the RTP payload starts a VP8 keyframe (RFC 7741 payload descriptor + header). */
export function isVp8KeyframeStart(payload: Buffer): boolean {
  if (payload.length < 1) return false;
  const b0 = payload[0];
  const start = (b0 & 0x10) !== 0;
  const partitionId = b0 & 0x07;
  if (!start || partitionId !== 0) return false;
  let offset = 1;
  if (b0 & 0x80) {
    if (payload.length < 2) return false;
    const b1 = payload[1];
    offset = 2;
    if (b1 & 0x80) offset += payload.length > offset && payload[offset] & 0x80 ? 2 : 1; // PictureID
    if (b1 & 0x40) offset += 1; // TL0PICIDX
    if (b1 & 0x30) offset += 1; // TID/KEYIDX
  }
  return payload.length > offset && (payload[offset] & 0x01) === 0;
}

/** REMB bitrate = mantissa * 2^exp with an 18-bit mantissa. */
export function rembFields(bitrate: number): { brExp: number; brMantissa: number } {
  let mantissa = Math.max(0, Math.floor(bitrate));
  let exp = 0;
  while (mantissa >= 1 << 18) {
    mantissa = Math.floor(mantissa / 2);
    exp++;
  }
  return { brExp: exp, brMantissa: mantissa };
}

/** Fewer PLIs than this apart are not sent: Chrome merges bursts, and each costs a large frame. */
export const KEYFRAME_REQUEST_MIN_INTERVAL_MS = 300;
/** A consumer waiting for its first keyframe asks again this often (a late PLI can be merged away). */
export const KEYFRAME_RETRY_MS = 500;

/** One RTP packet ready to forward: header extensions stripped, serialized once for every consumer. */
interface ForwardPacket {
  buf: Buffer;
  /** First packet of a video keyframe (a consumer waiting for a keyframe may start here). */
  keyframeStart: boolean;
}

/** A client's track: fans every packet out to its consumers, rate-limits keyframe requests. */
class WeriftProducer implements Producer {
  readonly layers = 1;
  readonly consumers = new Set<WeriftConsumer>();
  private lastKeyframeRequest = 0;
  closed = false;

  constructor(
    readonly id: string,
    readonly kind: MediaKind,
    private readonly transceiver: RTCRtpTransceiver,
    private readonly ssrc: () => number | undefined,
    private readonly totals: EngineTotals,
  ) {}

  forward(packet: ForwardPacket): void {
    for (const consumer of this.consumers) consumer.forward(packet);
  }

  requestKeyframe(): void {
    const ssrc = this.ssrc();
    if (this.kind !== 'video' || ssrc === undefined || this.closed) return;
    const now = Date.now();
    if (now - this.lastKeyframeRequest < KEYFRAME_REQUEST_MIN_INTERVAL_MS) return;
    this.lastKeyframeRequest = now;
    this.totals.keyframeRequests++;
    this.transceiver.receiver.sendRtcpPLI(ssrc).catch(() => {});
  }

  close(): void {
    this.closed = true;
    for (const consumer of this.consumers) consumer.stop();
    this.consumers.clear();
  }
}

/** Negotiated directions in which the SFU's side of an m-line sends. */
const SENDING = new Set(['sendonly', 'sendrecv']);

/**
 * A producer forwarded on a sending transceiver of the subscriber's connection. Video starts
 * only at a keyframe: until one has gone out, deltas are dropped and a keyframe is re-requested
 * every KEYFRAME_RETRY_MS.
 */
class WeriftConsumer implements Consumer {
  stopped = false;
  private waitingForKeyframe: boolean;
  private retry?: NodeJS.Timeout;
  private readonly unsubscribePli: () => void;
  /** The sender sent for an earlier track: renumber this one's packets to continue its sequence. */
  private renumber: boolean;

  constructor(
    readonly producer: WeriftProducer,
    readonly transceiver: RTCRtpTransceiver,
    private readonly totals: EngineTotals,
    recycled: boolean,
  ) {
    this.renumber = recycled;
    this.waitingForKeyframe = producer.kind === 'video';
    this.unsubscribePli = transceiver.sender.onPictureLossIndication.subscribe(() => producer.requestKeyframe()).unSubscribe;
    if (this.waitingForKeyframe) {
      this.retry = setInterval(() => {
        if (this.ready()) producer.requestKeyframe();
      }, KEYFRAME_RETRY_MS);
      this.retry.unref();
    }
    producer.consumers.add(this);
  }

  get kind(): MediaKind {
    return this.producer.kind;
  }

  setPreferredLayer(): void {
    // werift receives no simulcast: one layer.
  }

  currentLayer(): number | undefined {
    return undefined;
  }

  /**
   * Sending is negotiated (the last answer has this m-line sending) and the transport is up. A
   * recycled transceiver keeps its codec and transport from the track before: without the
   * direction check it would look ready before the client has a receiver for it again.
   */
  ready(): boolean {
    const sender = this.transceiver.sender;
    return !this.stopped && !!sender.codec && SENDING.has(this.transceiver.currentDirection ?? '') && sender.dtlsTransport?.state === 'connected';
  }

  forward(packet: ForwardPacket): void {
    if (this.stopped) return;
    if (this.waitingForKeyframe) {
      // A keyframe sent before the subscriber's transport is up would be lost: keep waiting.
      if (!packet.keyframeStart || !this.ready()) return;
      this.waitingForKeyframe = false;
      clearInterval(this.retry);
    }
    if (!SENDING.has(this.transceiver.currentDirection ?? '')) return;
    if (this.renumber) {
      this.renumber = false;
      // Same SSRC as the track before: go on from its last sequence number and timestamp
      // (werift's own replaceTrack does this) instead of jumping to the new publisher's.
      this.transceiver.sender.replaceRTP({ sequenceNumber: packet.buf.readUInt16BE(2), timestamp: packet.buf.readUInt32BE(4) }, true);
    }
    this.totals.packetsOut++;
    this.totals.bytesOut += packet.buf.length;
    // A Buffer, not the packet object: werift deserializes and then mutates its own copy.
    this.transceiver.sender.sendRtp(packet.buf).catch(() => {});
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.retry);
    this.unsubscribePli();
    this.producer.consumers.delete(this);
  }
}

class WeriftConnection implements EngineConnection {
  onLocalCandidate: (candidate: IceCandidateInit | null) => void = () => {};
  onProducer: (producer: Producer) => void = () => {};
  onData: (label: string, data: string | Buffer) => void = () => {};
  onStateChange: (state: ConnectionState) => void = () => {};

  private readonly pc: RTCPeerConnection;
  private readonly channels = new Map<string, RTCDataChannel>();
  private readonly rembTimer: NodeJS.Timeout;
  private readonly videoInbound: MediaStreamTrack[] = [];
  private readonly producers: WeriftProducer[] = [];
  readonly consumers = new Set<WeriftConsumer>();
  /** werift re-emits onTrack on every setRemoteDescription: adopt each track once. */
  private readonly adopted = new WeakSet<MediaStreamTrack>();
  /**
   * Sending transceivers whose track was removed. Once a negotiation has made one inactive (its
   * m-line rejected with port 0 on both sides), the next outbound track of its kind reuses it:
   * same mid, new msid, sendonly again. Without this every publisher that ever joined would leave
   * two m-lines behind on each subscriber's connection (issue #14).
   */
  private readonly stoppedSenders: RTCRtpTransceiver[] = [];
  /**
   * The signaling operation in flight (settled, never rejecting). werift 0.24.4 closed in the
   * middle of applying a description keeps going: the ICE socket it then gathers is never closed
   * (a UDP socket and its timers per such peer, for the life of the process), or the operation
   * never settles. close() waits for it first.
   */
  private inFlight: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: EngineOptions,
    private readonly totals: EngineTotals,
    private readonly gathering: Serial,
    private readonly onClosed: () => void,
  ) {
    this.pc = new RTCPeerConnection({
      iceServers: [],
      iceInterfaceAddresses: { udp4: options.listenIp },
      iceUseIpv4: true,
      iceUseIpv6: false,
      icePortRange: options.portRange,
      iceFilterStunResponse: (_message, addr) => {
        if (options.isAllowedRemote(addr[0])) return true;
        options.onDroppedIceCheck(addr[0]);
        return false;
      },
      iceFilterCandidatePair: (pair) => options.isAllowedRemote(pair.remoteCandidate.host),
      codecs: {
        audio: [useOPUS()],
        video: [useVP8({ rtcpFeedback: [useNACK(), usePLI(), useREMB()] })],
      },
      headerExtensions: {
        audio: [useSdesMid()],
        video: [useSdesMid(), useAbsSendTime()],
      },
      bundlePolicy: 'max-bundle',
    });
    this.pc.onIceCandidate.subscribe((candidate) => {
      this.onLocalCandidate(candidate ? (candidate.toJSON() as IceCandidateInit) : null);
    });
    this.pc.connectionStateChange.subscribe((state) => this.onStateChange(state));
    this.pc.onDataChannel.subscribe((channel) => this.adoptChannel(channel));
    this.pc.onTrack.subscribe((track) => this.adoptTrack(track));
    // Chrome's send-side estimate needs receiver feedback; REMB is what holds its bitrate.
    this.rembTimer = setInterval(() => this.sendRemb(), REMB_INTERVAL_MS);
    this.rembTimer.unref();
  }

  get signalingState(): string {
    return this.pc.signalingState;
  }

  private adoptChannel(channel: RTCDataChannel): void {
    this.channels.set(channel.label, channel);
    channel.onMessage.subscribe((data) => this.onData(channel.label, data));
    channel.stateChanged.subscribe((state) => {
      if (state === 'closed' && this.channels.get(channel.label) === channel) this.channels.delete(channel.label);
    });
  }

  private adoptTrack(track: MediaStreamTrack): void {
    if (this.adopted.has(track)) return;
    this.adopted.add(track);
    const transceiver = this.pc.getTransceivers().find((t) => t.receiver.tracks.includes(track));
    if (!transceiver) return;
    const kind = track.kind as MediaKind;
    const producer = new WeriftProducer(`${transceiver.mid ?? track.id}`, kind, transceiver, () => track.ssrc, this.totals);
    this.producers.push(producer);
    if (kind === 'video') this.videoInbound.push(track);
    track.onReceiveRtp.subscribe((rtp) => {
      this.totals.packetsIn++;
      this.totals.bytesIn += rtp.serializeSize;
      // Header extension ids are per connection: forward none (the sender adds its own).
      const header = new RtpHeader({
        padding: rtp.header.padding,
        paddingSize: rtp.header.paddingSize,
        marker: rtp.header.marker,
        payloadType: rtp.header.payloadType,
        sequenceNumber: rtp.header.sequenceNumber,
        timestamp: rtp.header.timestamp,
        ssrc: rtp.header.ssrc,
      });
      const buf = new RtpPacket(header, rtp.payload).serialize();
      producer.forward({ buf, keyframeStart: kind === 'video' && isVp8KeyframeStart(rtp.payload) });
    });
    this.onProducer(producer);
  }

  private sendRemb(): void {
    const ssrcs = this.videoInbound.map((t) => t.ssrc).filter((s): s is number => typeof s === 'number');
    if (ssrcs.length === 0) return;
    const dtls = this.pc.dtlsTransports[0];
    if (!dtls || dtls.state !== 'connected') return;
    const { brExp, brMantissa } = rembFields(this.options.publisherBitrate);
    const feedback = new ReceiverEstimatedMaxBitrate({
      senderSsrc: 1,
      mediaSsrc: 0,
      brExp,
      brMantissa,
      ssrcNum: ssrcs.length,
      ssrcFeedbacks: ssrcs,
    });
    dtls.sendRtcp([new RtcpPayloadSpecificFeedback({ feedback })]).catch(() => {});
  }

  /**
   * werift's ICE agent queries stun.l.google.com:19302 whenever no STUN server is configured
   * (werift ice.js: `validateAddress(stunServer) ?? ["stun.l.google.com", 19302]`), and waits up
   * to 5 s for it before gathering completes — so before every answer. On a node without public
   * DNS that was 5 s of every join and rejoin; elsewhere it is a packet to Google. The SFU needs
   * no server-reflexive candidate (it is reached through TURN on its WireGuard address): clear it
   * on every ICE agent before it gathers.
   */
  private noDefaultStun(): void {
    for (const transport of this.pc.iceTransports) (transport.connection as { stunServer?: unknown }).stunServer = undefined;
  }

  /** setLocalDescription gathers (the first time): without STUN, and one connection at a time. */
  private setLocal(description: Parameters<RTCPeerConnection['setLocalDescription']>[0]): Promise<unknown> {
    return this.gathering.run(async () => {
      this.noDefaultStun();
      await this.pc.setLocalDescription(description);
    });
  }

  /** Runs one signaling operation on the connection, tracked for close(). */
  private operation<T>(work: () => Promise<T>): Promise<T> {
    const done = work();
    const previous = this.inFlight;
    this.inFlight = Promise.allSettled([previous, done]);
    return done;
  }

  acceptOffer(sdp: string): Promise<string> {
    return this.operation(async () => {
      await this.pc.setRemoteDescription({ type: 'offer', sdp });
      const answer = await this.pc.createAnswer();
      await this.setLocal(answer);
      return this.pc.localDescription!.sdp;
    });
  }

  /**
   * werift numbers its header extensions 1..n per kind, but in one BUNDLE an id must mean the same
   * extension on every m-line (Chrome rejects the offer otherwise). Reuse the ids the client
   * negotiated; give the others ids nobody uses.
   */
  private alignExtensionIds(): void {
    const negotiated = new Map<string, number>();
    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.mid === null || transceiver.mid === undefined) continue;
      for (const ext of transceiver.headerExtensions) negotiated.set(ext.uri, ext.id);
    }
    const used = new Set(negotiated.values());
    let next = 1;
    for (const kind of ['audio', 'video'] as const) {
      for (const ext of this.pc.config.headerExtensions[kind] ?? []) {
        let id = negotiated.get(ext.uri);
        if (id === undefined) {
          while (used.has(next)) next++;
          id = next;
          used.add(id);
          negotiated.set(ext.uri, id);
        }
        ext.id = id;
      }
    }
  }

  createOffer(): Promise<string> {
    return this.operation(async () => {
      this.alignExtensionIds();
      const offer = await this.pc.createOffer();
      await this.setLocal(offer);
      return this.pc.localDescription!.sdp;
    });
  }

  acceptAnswer(sdp: string): Promise<void> {
    return this.operation(() => this.pc.setRemoteDescription({ type: 'answer', sdp }).then(() => undefined));
  }

  async addRemoteCandidate(candidate: IceCandidateInit | null): Promise<void> {
    if (candidate === null || candidate.candidate === '') return;
    await this.operation(() =>
      this.pc.addIceCandidate({
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid ?? undefined,
        sdpMLineIndex: candidate.sdpMLineIndex ?? undefined,
      }),
    );
  }

  consume(producer: Producer, streamId: string): Consumer {
    const source = producer as WeriftProducer;
    const kind = source.kind;
    const stream = new MediaStream({ id: streamId });
    // Only one whose stop was negotiated: the client has then dropped its receiver for that
    // m-line, and bringing the m-line back with a new msid fires ontrack for the new stream
    // (a direction change inactive -> recvonly on the client; a msid change alone would not).
    const index = this.stoppedSenders.findIndex((t) => t.kind === kind && t.currentDirection === 'inactive');
    if (index >= 0) {
      const [transceiver] = this.stoppedSenders.splice(index, 1);
      transceiver.sender.setStreams([stream]);
      transceiver.setDirection('sendonly');
      return this.track(new WeriftConsumer(source, transceiver, this.totals, true));
    }
    const transceiver = this.pc.addTransceiver(kind, { direction: 'sendonly', streams: [stream] });
    return this.track(new WeriftConsumer(source, transceiver, this.totals, false));
  }

  private track(consumer: WeriftConsumer): WeriftConsumer {
    this.consumers.add(consumer);
    return consumer;
  }

  stopConsumer(consumer: Consumer): void {
    const out = consumer as WeriftConsumer;
    // Not `out.stopped`: a consumer its producer's close already stopped still has its m-line.
    if (!this.consumers.delete(out)) return;
    out.stop();
    out.transceiver.setDirection('inactive');
    // werift's addTransceiver would otherwise replace an inactive transceiver it thinks unused,
    // of any kind, by a new one; the SFU recycles its own (above).
    out.transceiver.usedForSender = true;
    this.stoppedSenders.push(out.transceiver);
  }

  sendData(label: string, data: string | Buffer): boolean {
    const channel = this.channels.get(label);
    if (!channel || channel.readyState !== 'open') return false;
    channel.send(data);
    return true;
  }

  selectedRemoteAddress(): string | undefined {
    return this.pc.iceTransports[0]?.connection.nominated?.remoteCandidate.host;
  }

  mediaSections(): number {
    return this.pc.getTransceivers().length;
  }

  async close(): Promise<void> {
    this.onClosed();
    clearInterval(this.rembTimer);
    for (const producer of this.producers) producer.close();
    for (const consumer of this.consumers) consumer.stop();
    this.consumers.clear();
    // Bounded: an operation that never settles must not keep the peer (and its room) forever.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.inFlight, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    await this.pc.close().catch(() => {});
  }
}

export class WeriftEngine implements MediaEngine {
  readonly name = 'werift' as const;
  readonly simulcast = false;
  private readonly counters: EngineTotals = { bytesIn: 0, packetsIn: 0, bytesOut: 0, packetsOut: 0, keyframeRequests: 0 };
  private readonly gathering = new Serial();
  private readonly connections = new Set<WeriftConnection>();

  constructor(private readonly options: EngineOptions) {
    // werift gathers only non-internal addresses and, when iceInterfaceAddresses matches none of
    // them, silently falls back to EVERY interface. Refuse such a listen_ip (missing, loopback).
    const usable = Object.values(networkInterfaces()).some((list) => list?.some((a) => a.address === options.listenIp && !a.internal));
    if (!usable) throw new Error(`listen_ip ${options.listenIp} is not a non-loopback address of this host`);
  }

  createConnection(): EngineConnection {
    const connection = new WeriftConnection(this.options, this.counters, this.gathering, () => this.connections.delete(connection));
    this.connections.add(connection);
    return connection;
  }

  async totals(): Promise<EngineTotals> {
    return { ...this.counters };
  }

  failure(): string | undefined {
    return undefined;
  }

  /** Forwarding runs in this process: one "worker", the SFU's own. */
  async workers(): Promise<WorkerFigures[]> {
    const cpu = process.cpuUsage();
    const consumers = [...this.connections].reduce((n, c) => n + c.consumers.size, 0);
    return [{ pid: process.pid, cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000, rooms: 0, consumers }];
  }

  async close(): Promise<void> {}
}
