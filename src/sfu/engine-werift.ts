// The werift implementation of the media engine (the only file that imports werift).
// Gotchas from ../../shared/design/webrtc-facts.md are handled here: no default STUN server,
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
  ForwardPacket,
  InboundTrack,
  MediaEngine,
  MediaKind,
  OutboundTrack,
} from './engine.ts';

const REMB_INTERVAL_MS = 1000;
/** How long close() waits for a description being applied before it closes anyway. */
const CLOSE_WAIT_MS = 5000;

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

class WeriftInbound implements InboundTrack {
  onPacket: (packet: ForwardPacket) => void = () => {};
  constructor(
    readonly id: string,
    readonly kind: MediaKind,
    private readonly transceiver: RTCRtpTransceiver,
    private readonly ssrc: () => number | undefined,
  ) {}

  requestKeyframe(): void {
    const ssrc = this.ssrc();
    if (this.kind !== 'video' || ssrc === undefined) return;
    this.transceiver.receiver.sendRtcpPLI(ssrc).catch(() => {});
  }
}

class WeriftOutbound implements OutboundTrack {
  onKeyframeRequest: () => void = () => {};
  stopped = false;
  constructor(
    readonly kind: MediaKind,
    readonly transceiver: RTCRtpTransceiver,
    private readonly totals: EngineTotals,
  ) {
    transceiver.sender.onPictureLossIndication.subscribe(() => this.onKeyframeRequest());
  }

  ready(): boolean {
    const sender = this.transceiver.sender;
    return !this.stopped && !!sender.codec && sender.dtlsTransport?.state === 'connected';
  }

  send(packet: ForwardPacket): void {
    if (this.stopped) return;
    this.totals.packetsOut++;
    this.totals.bytesOut += packet.buf.length;
    // A Buffer, not the packet object: werift deserializes and then mutates its own copy.
    this.transceiver.sender.sendRtp(packet.buf).catch(() => {});
  }
}

class WeriftConnection implements EngineConnection {
  onLocalCandidate: (candidate: IceCandidateInit | null) => void = () => {};
  onInboundTrack: (track: InboundTrack) => void = () => {};
  onData: (label: string, data: string | Buffer) => void = () => {};
  onStateChange: (state: ConnectionState) => void = () => {};

  private readonly pc: RTCPeerConnection;
  private readonly channels = new Map<string, RTCDataChannel>();
  private readonly rembTimer: NodeJS.Timeout;
  private readonly videoInbound: MediaStreamTrack[] = [];
  /** werift re-emits onTrack on every setRemoteDescription: adopt each track once. */
  private readonly adopted = new WeakSet<MediaStreamTrack>();
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
    const inbound = new WeriftInbound(`${transceiver.mid ?? track.id}`, kind, transceiver, () => track.ssrc);
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
      inbound.onPacket({ buf, keyframeStart: kind === 'video' && isVp8KeyframeStart(rtp.payload) });
    });
    this.onInboundTrack(inbound);
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
      await this.pc.setLocalDescription(answer);
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
      await this.pc.setLocalDescription(offer);
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

  addOutbound(kind: MediaKind, streamId: string): OutboundTrack {
    const transceiver = this.pc.addTransceiver(kind, {
      direction: 'sendonly',
      streams: [new MediaStream({ id: streamId })],
    });
    return new WeriftOutbound(kind, transceiver, this.totals);
  }

  removeOutbound(track: OutboundTrack): void {
    const out = track as WeriftOutbound;
    out.stopped = true;
    out.transceiver.setDirection('inactive');
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

  async close(): Promise<void> {
    clearInterval(this.rembTimer);
    // Bounded: an operation that never settles must not keep the peer (and its room) forever.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.inFlight, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    await this.pc.close().catch(() => {});
  }
}

export class WeriftEngine implements MediaEngine {
  private readonly counters: EngineTotals = { bytesIn: 0, packetsIn: 0, bytesOut: 0, packetsOut: 0 };

  constructor(private readonly options: EngineOptions) {
    // werift gathers only non-internal addresses and, when iceInterfaceAddresses matches none of
    // them, silently falls back to EVERY interface. Refuse such a listen_ip (missing, loopback).
    const usable = Object.values(networkInterfaces()).some((list) => list?.some((a) => a.address === options.listenIp && !a.internal));
    if (!usable) throw new Error(`listen_ip ${options.listenIp} is not a non-loopback address of this host`);
  }

  createConnection(): EngineConnection {
    return new WeriftConnection(this.options, this.counters);
  }

  totals(): EngineTotals {
    return { ...this.counters };
  }
}
