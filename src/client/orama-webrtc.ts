// Browser client of Orama WebRTC (ESM, no framework). The seed's client flow:
//   1. POST {gateway}/v1/webrtc/turn/credentials (Bearer JWT) -> {urls, username, credential, ttl}
//   2. RTCPeerConnection({ iceServers: [TURN], iceTransportPolicy: 'relay' })
//   3. WebSocket {gateway}/v1/webrtc/signal?room=R with subprotocols ['Bearer', jwt]
//   4. join -> joined -> our offer (publish audio/video + a 'chat' data channel) -> answer;
//      afterwards the SFU offers whenever peers come and go; we answer (we are the POLITE side:
//      on glare we roll back our offer and answer the SFU's).
//   5. refresh-credentials -> setConfiguration; server-draining -> reconnect through the gateway,
//      which places us on another SFU.
//   6. the signaling socket lost (a gateway restarted): `resume` the same peer on a new socket —
//      the peer connection and its media go on; lost with its SFU (close 4011): join again.
import { CLOSE_SFU_LOST } from '../webrtc/protocol.ts';
import { alignExtensions } from './extmap.ts';
import type { DisplayInfo, IceCandidateInit, PeerInfo, ServerMessage, TurnCredentialsMessage } from '../webrtc/protocol.ts';

/** A peer connection `disconnected` this long (Chrome says so after ~5 s without ICE consent) is rejoined. */
export const MEDIA_STALL_MS = 3000;
/**
 * A publishing client that receives nothing at all from the SFU this long, while its connection
 * says `connected`, rejoins. The SFU sends it RTCP (REMB) every second, so silence means the
 * SFU→client half of the path died — e.g. ICE moved to another TURN server's relay after one was
 * lost, and the SFU keeps sending to the dead one. Receive-only clients get no such beacon and are
 * not watched.
 */
export const INBOUND_STALL_MS = 4000;
/**
 * A peer connection not connected this long after `joined` (its offer never answered, ICE never
 * completing) is rejoined: nothing else would notice, since it never reaches `failed`.
 */
export const CONNECT_TIMEOUT_MS = 15000;

export interface OramaCallOptions {
  /** Base URL of the namespace gateway, e.g. https://ns-myapp.orama.network ('' = this origin). */
  gateway?: string;
  room: string;
  /** JWT or API key: sent as Bearer on the credentials request and as a WS subprotocol. */
  token: string;
  display?: DisplayInfo;
  /** Local media to publish; omit to only receive. */
  media?: MediaStream;
  /** Data channel label used by send()/'data' events. */
  dataLabel?: string;
  /** Reconnects in a row after unexpected signaling closes, reset once media is connected again (server-draining always reconnects). */
  maxReconnects?: number;
  /** Publish video as simulcast layers when the SFU forwards simulcast (`joined.simulcast`); default true. */
  simulcast?: boolean;
}

/**
 * The layers published to an SFU that forwards simulcast, lowest first (mediasoup-client's
 * order): quarter, half and full resolution. Chrome sends as many as the camera's resolution
 * allows (640x480: two; 1280x720: three) and its bandwidth estimate affords, lowest first. The
 * three together stay within the SFU's default publisher_bitrate (1.5 Mbit/s), and the top one
 * within the bandwidth the SFU assumes for a new subscriber (1 Mbit/s) before its estimate grows.
 */
export const SIMULCAST_ENCODINGS: RTCRtpEncodingParameters[] = [
  { rid: 'l0', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'l1', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'l2', scaleResolutionDownBy: 1, maxBitrate: 800_000 },
];

export interface RemoteTrackDetail {
  peerId: string;
  track: MediaStreamTrack;
  stream: MediaStream;
}

type Events = {
  joined: { peerId: string; peers: PeerInfo[] };
  'peer-joined': PeerInfo;
  'peer-left': { peerId: string };
  track: RemoteTrackDetail;
  data: { data: string | ArrayBuffer };
  credentials: { kind: 'turn-credentials' | 'refresh-credentials'; username: string; ttl: number };
  draining: { deadlineS: number };
  reconnecting: { reason: string };
  reconnected: { peerId: string; afterMs: number };
  /** The signaling socket was replaced; the peer connection (and media) never stopped. */
  resumed: { peerId: string; afterMs: number };
  'room-closed': { room: string };
  error: { code: string; message: string };
  state: { connection: RTCPeerConnectionState };
};

export class OramaCall extends EventTarget {
  readonly options: Required<Omit<OramaCallOptions, 'media' | 'display'>> & Pick<OramaCallOptions, 'media' | 'display'>;
  pc?: RTCPeerConnection;
  ws?: WebSocket;
  channel?: RTCDataChannel;
  peerId?: string;
  private joined = false;
  private makingOffer = false;
  private localQueue: (IceCandidateInit | null)[] = [];
  private remoteQueue: IceCandidateInit[] = [];
  private leaving = false;
  private reconnects = 0;
  private generation = 0;
  private chain: Promise<void> = Promise.resolve();
  private reconnecting = false;
  private resumeToken?: string;

  constructor(options: OramaCallOptions) {
    super();
    this.options = { gateway: '', dataLabel: 'chat', maxReconnects: 3, simulcast: true, ...options };
  }

  on<K extends keyof Events>(type: K, listener: (detail: Events[K]) => void): this {
    this.addEventListener(type, (e) => listener((e as CustomEvent<Events[K]>).detail));
    return this;
  }

  private emit<K extends keyof Events>(type: K, detail: Events[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  private wsUrl(): string {
    const base = this.options.gateway || location.origin;
    return `${base.replace(/^http/, 'ws')}/v1/webrtc/signal?room=${encodeURIComponent(this.options.room)}`;
  }

  async fetchCredentials(): Promise<TurnCredentialsMessage> {
    const res = await fetch(`${this.options.gateway}/v1/webrtc/turn/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.options.token}` },
    });
    if (!res.ok) throw new Error(`TURN credentials: HTTP ${res.status}`);
    return { type: 'turn-credentials', ...(await res.json()) } as TurnCredentialsMessage;
  }

  /** Joins the room; resolves when the SFU confirmed the join. */
  async connect(): Promise<void> {
    this.leaving = false;
    const generation = ++this.generation;
    const turn = await this.fetchCredentials();
    const pc = new RTCPeerConnection({
      iceServers: [{ urls: turn.urls, username: turn.username, credential: turn.credential }],
      iceTransportPolicy: 'relay',
    });
    this.pc = pc;
    this.joined = false;
    this.localQueue = [];
    this.remoteQueue = [];
    this.channel = pc.createDataChannel(this.options.dataLabel);
    this.channel.onmessage = (e) => this.emit('data', { data: e.data });
    pc.onicecandidate = (e) => {
      const candidate = e.candidate ? (e.candidate.toJSON() as IceCandidateInit) : null;
      if (this.joined) this.send({ type: 'ice-candidate', candidate });
      else this.localQueue.push(candidate);
    };
    pc.ontrack = (e) => {
      const stream = e.streams[0] ?? new MediaStream([e.track]);
      this.emit('track', { peerId: stream.id, track: e.track, stream });
    };
    let stalled: ReturnType<typeof setTimeout> | undefined;
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      clearTimeout(stalled);
      // Media flows again: the next failure gets the full reconnect budget (maxReconnects is per
      // incident, not per call — a long call outlives many SFU restarts).
      if (state === 'connected') this.reconnects = 0;
      // The media path is gone (the TURN server or the SFU behind it lost, with no word on the
      // signaling socket): join again, through whichever TURN server and SFU answer now. ICE
      // restart would keep the peer but needs the same SFU alive; a rejoin covers both cases.
      if (state === 'failed' && generation === this.generation) void this.reconnect('media connection failed');
      if (state === 'disconnected') {
        stalled = setTimeout(() => {
          if (pc.connectionState === 'disconnected' && generation === this.generation) void this.reconnect(`media disconnected for ${MEDIA_STALL_MS / 1000} s`);
        }, MEDIA_STALL_MS);
      }
      this.emit('state', { connection: state });
    };

    if (this.options.media?.getVideoTracks().length) this.watchInbound(pc, generation);
    const connectTimer = setTimeout(() => {
      if (generation === this.generation && this.joined && pc.connectionState !== 'connected') void this.reconnect(`media not connected ${CONNECT_TIMEOUT_MS / 1000} s after joining`);
    }, CONNECT_TIMEOUT_MS);
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'connected' || pc.connectionState === 'closed') clearTimeout(connectTimer);
    });
    await this.openSignaling(generation, { type: 'join', room: this.options.room, ...(this.options.display ? { display: this.options.display } : {}) });
  }

  /** See INBOUND_STALL_MS. Stops with the connection's generation. */
  private watchInbound(pc: RTCPeerConnection, generation: number): void {
    let last = -1;
    let changed = performance.now();
    const timer = setInterval(async () => {
      if (generation !== this.generation) return clearInterval(timer);
      if (pc.connectionState !== 'connected') { last = -1; changed = performance.now(); return; }
      let bytes = 0;
      for (const s of (await pc.getStats().catch(() => new Map())).values() as Iterable<{ type: string; bytesReceived?: number }>) {
        if (s.type === 'transport') bytes += s.bytesReceived ?? 0;
      }
      if (bytes !== last) { last = bytes; changed = performance.now(); return; }
      if (performance.now() - changed >= INBOUND_STALL_MS && generation === this.generation) {
        clearInterval(timer);
        void this.reconnect(`nothing received from the SFU for ${INBOUND_STALL_MS / 1000} s`);
      }
    }, 1000);
  }

  /**
   * One signaling socket: sends `hello` (join or resume) once open; resolves when the SFU
   * confirmed it (joined / resumed), rejects on an error before that or on close.
   */
  private openSignaling(generation: number, hello: object): Promise<void> {
    const ws = new WebSocket(this.wsUrl(), ['Bearer', this.options.token]);
    this.ws = ws;
    let confirmed = false;
    return new Promise<void>((resolve, reject) => {
      ws.onopen = () => ws.send(JSON.stringify(hello));
      ws.onerror = () => reject(new Error('signaling connection failed'));
      ws.onmessage = (e) => {
        const message = JSON.parse(String(e.data)) as ServerMessage;
        if (message.type === 'joined' || message.type === 'resumed') {
          confirmed = true;
          resolve();
        }
        if (message.type === 'error' && !confirmed) return reject(new Error(`${message.code}: ${message.message}`));
        // Serialized: each message sees the state the previous one left.
        this.chain = this.chain
          .then(() => (generation === this.generation ? this.handle(message) : undefined))
          .catch((error: Error) => this.emit('error', { code: 'client', message: error.message }));
      };
      ws.onclose = (e) => {
        reject(new Error('signaling closed before join'));
        // Only a session that had joined recovers by itself; a failed connect() rejects instead.
        if (!confirmed || this.ws !== ws || generation !== this.generation || this.leaving) return;
        // A socket lost with the SFU behind it (the gateway says so) or a peer that was never
        // given a token: join again. Otherwise (a gateway restarted, the network blinked) the
        // SFU keeps the peer and its media for RESUME_GRACE_S: take it over on a new socket.
        if (e.code === CLOSE_SFU_LOST || !this.resumeToken) void this.reconnect('signaling closed');
        else void this.resume(generation);
      };
    });
  }

  /**
   * The signaling socket closed but the peer connection is fine: a new socket (through whichever
   * gateway answers) resumes the same peer, media untouched. Falls back to a full reconnect.
   */
  private async resume(generation: number): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    const started = performance.now();
    this.joined = false; // candidates found meanwhile wait for the new socket
    this.emit('reconnecting', { reason: 'signaling closed (resuming)' });
    try {
      // Backoff within the SFU's grace (RESUME_GRACE_S): 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s.
      for (let attempt = 0; attempt < 5 && generation === this.generation && !this.leaving; attempt++) {
        try {
          await this.openSignaling(generation, { type: 'resume', room: this.options.room, peer_id: this.peerId, resume_token: this.resumeToken });
          this.emit('resumed', { peerId: this.peerId!, afterMs: performance.now() - started });
          return;
        } catch (error) {
          this.ws?.close();
          if (/^resume_failed/.test((error as Error).message)) break;
          await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
        }
      }
    } finally {
      this.reconnecting = false;
    }
    if (generation === this.generation && !this.leaving) void this.reconnect('signaling closed; resume failed');
  }

  private send(message: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  /** One handler per server message type. */
  private async handle(message: ServerMessage): Promise<void> {
    const pc = this.pc!;
    switch (message.type) {
      case 'resumed':
        this.joined = true;
        for (const c of this.localQueue.splice(0)) this.send({ type: 'ice-candidate', candidate: c });
        return;
      case 'joined': {
        this.joined = true;
        this.peerId = message.peer_id;
        this.resumeToken = message.resume_token;
        for (const c of this.localQueue.splice(0)) this.send({ type: 'ice-candidate', candidate: c });
        this.emit('joined', { peerId: message.peer_id, peers: message.peers });
        // Tracks are added now that the SFU said whether it forwards simulcast (the number of
        // encodings is fixed when a transceiver is made).
        for (const track of this.options.media?.getTracks() ?? []) {
          const layered = track.kind === 'video' && message.simulcast === true && this.options.simulcast;
          pc.addTransceiver(track, { direction: 'sendonly', streams: [this.options.media!], ...(layered ? { sendEncodings: SIMULCAST_ENCODINGS.map((e) => ({ ...e })) } : {}) });
        }
        this.makingOffer = true;
        try {
          const offer = await pc.createOffer();
          // In the SFU's header-extension ids when it names them (src/client/extmap.ts); the
          // offer as made if the browser refuses the rewritten one.
          const ids = message.header_extensions;
          const aligned = ids ? { type: 'offer' as const, sdp: alignExtensions(offer.sdp ?? '', ids) } : undefined;
          await (aligned ? pc.setLocalDescription(aligned).catch(() => pc.setLocalDescription(offer)) : pc.setLocalDescription(offer));
          this.send({ type: 'offer', sdp: pc.localDescription!.sdp });
        } finally {
          this.makingOffer = false;
        }
        return;
      }
      case 'offer': {
        // Polite peer: a colliding local offer is rolled back by setRemoteDescription.
        await pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
        await this.flushRemoteCandidates();
        await pc.setLocalDescription(await pc.createAnswer());
        this.send({ type: 'answer', sdp: pc.localDescription!.sdp });
        return;
      }
      case 'answer':
        if (pc.signalingState !== 'have-local-offer') return; // our offer was rolled back
        await pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
        await this.flushRemoteCandidates();
        return;
      case 'ice-candidate':
        if (!message.candidate) return;
        if (pc.remoteDescription) await pc.addIceCandidate(message.candidate);
        else this.remoteQueue.push(message.candidate);
        return;
      case 'turn-credentials':
      case 'refresh-credentials':
        if (message.type === 'refresh-credentials') {
          pc.setConfiguration({
            ...pc.getConfiguration(),
            iceServers: [{ urls: message.urls, username: message.username, credential: message.credential }],
          });
        }
        this.emit('credentials', { kind: message.type, username: message.username, ttl: message.ttl });
        return;
      case 'peer-joined':
        this.emit('peer-joined', { peer_id: message.peer_id, display: message.display, subject: message.subject });
        return;
      case 'peer-left':
        this.emit('peer-left', { peerId: message.peer_id });
        return;
      case 'server-draining':
        this.emit('draining', { deadlineS: message.deadline_s });
        void this.reconnect('server draining', true);
        return;
      case 'room-closed':
        this.emit('room-closed', { room: message.room });
        this.leave();
        return;
      case 'error':
        this.emit('error', { code: message.code, message: message.message });
        return;
    }
  }

  private async flushRemoteCandidates(): Promise<void> {
    for (const c of this.remoteQueue.splice(0)) await this.pc!.addIceCandidate(c);
  }

  private async reconnect(reason: string, always = false): Promise<void> {
    if (this.leaving || this.reconnecting) return;
    if (!always && this.reconnects >= this.options.maxReconnects) {
      this.emit('error', { code: 'disconnected', message: `${reason}; gave up after ${this.reconnects} reconnects` });
      return;
    }
    this.reconnects++;
    this.reconnecting = true;
    const started = performance.now();
    this.emit('reconnecting', { reason });
    this.teardown();
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await this.connect();
          this.emit('reconnected', { peerId: this.peerId!, afterMs: performance.now() - started });
          return;
        } catch {
          this.teardown();
          await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
        }
      }
      this.emit('error', { code: 'disconnected', message: `${reason}; reconnect failed` });
    } finally {
      this.reconnecting = false;
    }
  }

  /**
   * Asks for at most simulcast layer `layer` (0 = lowest) of `peerId`'s video; the SFU may send
   * less while this client's bandwidth is short. No effect on an SFU without simulcast.
   */
  preferLayer(peerId: string, layer: number): void {
    this.send({ type: 'preferred-layer', peer_id: peerId, layer });
  }

  /** Sends on the room's data channel (relayed by the SFU to every other peer). */
  sendData(data: string): boolean {
    if (this.channel?.readyState !== 'open') return false;
    this.channel.send(data);
    return true;
  }

  private teardown(): void {
    this.generation++;
    this.send({ type: 'leave' });
    this.ws?.close();
    this.pc?.close();
    this.joined = false;
  }

  leave(): void {
    this.leaving = true;
    this.teardown();
  }
}
