// The narrow seam between room logic and a WebRTC media engine. Room, Peer, Track and
// Subscription speak only these types; engine-werift.ts is the one implementation. A second
// engine (e.g. mediasoup) would implement MediaEngine and nothing above it would change.
import type { IceCandidateInit } from '../webrtc/protocol.ts';

export type MediaKind = 'audio' | 'video';

export interface EngineOptions {
  /** The only local address ICE binds to (the node's WireGuard address). */
  listenIp: string;
  /** Inclusive UDP port range for ICE sockets (the namespace's media block). */
  portRange: [number, number];
  /** Remote ICE addresses accepted; everything else is dropped (relay-only). */
  isAllowedRemote: (ip: string) => boolean;
  /** Called for every ICE check dropped because its source address is not allowed. */
  onDroppedIceCheck: (ip: string) => void;
  /** Bitrate the SFU advertises (REMB) to video publishers, bits/s. */
  publisherBitrate: number;
}

/** One RTP packet ready to forward: header extensions stripped, serialized once. */
export interface ForwardPacket {
  buf: Buffer;
  /** First packet of a video keyframe (a subscriber waiting for a keyframe may start here). */
  keyframeStart: boolean;
}

/** A track a client publishes, as received by the engine. */
export interface InboundTrack {
  readonly id: string;
  readonly kind: MediaKind;
  onPacket: (packet: ForwardPacket) => void;
  requestKeyframe(): void;
}

/** A sending slot on a subscriber's connection, fed with packets of one InboundTrack. */
export interface OutboundTrack {
  readonly kind: MediaKind;
  send(packet: ForwardPacket): void;
  /** Negotiated and the transport is up: a packet sent now reaches the subscriber. */
  ready(): boolean;
  /** The subscriber asked for a keyframe (PLI/FIR). */
  onKeyframeRequest: () => void;
}

export type ConnectionState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';
export type SignalingState = 'stable' | 'have-local-offer' | 'have-remote-offer' | 'closed' | string;

export interface EngineConnection {
  readonly signalingState: SignalingState;
  /** Apply the client's offer, return the SFU's answer SDP. */
  acceptOffer(sdp: string): Promise<string>;
  createOffer(): Promise<string>;
  acceptAnswer(sdp: string): Promise<void>;
  addRemoteCandidate(candidate: IceCandidateInit | null): Promise<void>;
  /** Add a sending slot; `streamId` becomes the msid stream id the client sees (the publishing peer). */
  addOutbound(kind: MediaKind, streamId: string): OutboundTrack;
  /** Stop a sending slot (takes effect at the next negotiation). */
  removeOutbound(track: OutboundTrack): void;
  sendData(label: string, data: string | Buffer): boolean;
  selectedRemoteAddress(): string | undefined;
  /** Audio/video m-lines of the connection, stopped ones included (what its SDP carries). */
  mediaSections(): number;
  close(): Promise<void>;

  onLocalCandidate: (candidate: IceCandidateInit | null) => void;
  onInboundTrack: (track: InboundTrack) => void;
  onData: (label: string, data: string | Buffer) => void;
  onStateChange: (state: ConnectionState) => void;
}

export interface EngineTotals {
  bytesIn: number;
  packetsIn: number;
  bytesOut: number;
  packetsOut: number;
}

export interface MediaEngine {
  createConnection(): EngineConnection;
  totals(): EngineTotals;
}
