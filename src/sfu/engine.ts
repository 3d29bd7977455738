// The seam between room logic and a WebRTC media engine, at the level of transports, producers
// and consumers. Room, Peer, Track and Subscription keep the domain — who is in a room, who
// subscribes to what — and never see a packet: the engine owns forwarding, keyframe requests,
// NACK/RTX, bandwidth estimation and simulcast layer choice. Two implementations:
// engine-werift.ts (pure TypeScript, forwards in JavaScript) and engine-mediasoup.ts (mediasoup's
// C++ worker, forwards in the worker). Signaling stays SDP: each engine turns the client's offer
// into its own terms.
import type { IceCandidateInit } from '../webrtc/protocol.ts';

export type MediaKind = 'audio' | 'video';
export const ENGINE_NAMES = ['werift', 'mediasoup'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export interface EngineOptions {
  /** The only local address ICE binds to (the node's WireGuard address). */
  listenIp: string;
  /** Inclusive UDP port range for ICE sockets (the namespace's media block). */
  portRange: [number, number];
  /** Remote ICE addresses accepted; everything else is dropped or its transport closed (relay-only). */
  isAllowedRemote: (ip: string) => boolean;
  /** Called for every ICE check (or selected tuple) refused because its address is not allowed. */
  onDroppedIceCheck: (ip: string) => void;
  /** Bitrate the SFU allows video publishers (REMB / bandwidth estimate cap), bits/s. */
  publisherBitrate: number;
}

/** A track a client publishes, as the engine receives it. */
export interface Producer {
  readonly id: string;
  readonly kind: MediaKind;
  /** Simulcast layers the client sends (1 without simulcast). */
  readonly layers: number;
}

/** One producer forwarded to one subscriber's connection. */
export interface Consumer {
  readonly kind: MediaKind;
  /**
   * The subscriber's wish for a simulcast layer (0 = lowest; above the top means the top). The
   * engine sends at most this layer, lower when the subscriber's bandwidth estimate says so.
   */
  setPreferredLayer(layer: number): void;
  /** The layer being sent now (undefined: no simulcast, or nothing sent yet). */
  currentLayer(): number | undefined;
}

export type ConnectionState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';
export type SignalingState = 'stable' | 'have-local-offer' | 'have-remote-offer' | 'closed' | string;

/** One client's connection (one RTCPeerConnection on the client, one transport in the engine). */
export interface EngineConnection {
  readonly signalingState: SignalingState;
  /** Apply the client's offer, return the SFU's answer SDP. */
  acceptOffer(sdp: string): Promise<string>;
  createOffer(): Promise<string>;
  acceptAnswer(sdp: string): Promise<void>;
  addRemoteCandidate(candidate: IceCandidateInit | null): Promise<void>;
  /**
   * Forward another connection's producer to this one; `streamId` becomes the msid stream id the
   * client sees (the publishing peer). Takes effect at the next negotiation.
   */
  consume(producer: Producer, streamId: string): Consumer;
  /** Stop forwarding (takes effect at the next negotiation). */
  stopConsumer(consumer: Consumer): void;
  sendData(label: string, data: string | Buffer): boolean;
  selectedRemoteAddress(): string | undefined;
  /** Audio/video m-lines of the connection, stopped ones included (what its SDP carries). */
  mediaSections(): number;
  close(): Promise<void>;

  onLocalCandidate: (candidate: IceCandidateInit | null) => void;
  onProducer: (producer: Producer) => void;
  onData: (label: string, data: string | Buffer) => void;
  onStateChange: (state: ConnectionState) => void;
}

export interface EngineTotals {
  bytesIn: number;
  packetsIn: number;
  bytesOut: number;
  packetsOut: number;
  /** PLIs/FIRs the engine sent to publishers. */
  keyframeRequests: number;
  /** Loss recovery by NACK and RTX (mediasoup counts it; werift does not, and leaves it out). */
  recovery?: RecoveryTotals;
}

export interface RecoveryTotals {
  /** NACKs the engine sent to publishers (packets missing on the way in). */
  nacksSent: number;
  /** Packets from publishers recovered by retransmission (RTX). */
  packetsRepaired: number;
  /** NACKs subscribers sent to the engine. */
  nacksReceived: number;
  /** Packets the engine retransmitted to subscribers. */
  packetsRetransmitted: number;
}

/** A media worker's figures for /metrics (werift: its one process). */
export interface WorkerFigures {
  pid: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Rooms with a router on it (werift: 0, it has no routers). */
  rooms: number;
  /** Consumers (forwarded streams) on it. */
  consumers: number;
}

/** Simulcast layers a publisher may send (RIDs, lowest first), when the engine forwards simulcast. */
export const SIMULCAST_LAYERS = 3;

export interface MediaEngine {
  readonly name: EngineName;
  /**
   * Whether publishers may send simulcast (RID layers, up to SIMULCAST_LAYERS): the engine then
   * forwards one layer per consumer, picked from its bandwidth estimate and preferred layer.
   * Clients learn it from `joined.simulcast` (werift: false, it forwards one stream).
   */
  readonly simulcast: boolean;
  /**
   * The header extension ids the engine's forwarded packets carry, by URI (mediasoup's worker
   * writes its own whatever was negotiated), and the only extensions it takes from publishers.
   * Told to clients in `joined.header_extensions`: a client that offers its extensions under
   * these ids shares one id space with the SFU in its BUNDLE (and gets bandwidth feedback as a
   * publisher). Undefined: the engine follows the client's ids (werift).
   */
  readonly headerExtensions?: Readonly<Record<string, number>>;
  /** `room` groups connections that forward to each other (mediasoup: one router per room). */
  createConnection(room: string): EngineConnection;
  /** Traffic so far (mediasoup asks its workers). */
  totals(): Promise<EngineTotals>;
  /** Undefined while healthy; otherwise why not (e.g. a mediasoup worker died). */
  failure(): string | undefined;
  /** Per-worker figures for /metrics (mediasoup; werift reports its one process). */
  workers(): Promise<WorkerFigures[]>;
  close(): Promise<void>;
}
