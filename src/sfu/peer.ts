// Peer: one client connection — its signaling transport, its engine connection (one
// RTCPeerConnection), the tracks it publishes and its subscriptions to others' tracks.
//
// Negotiation: the client makes the first offer (its publish offer; a receive-only client offers
// just a data channel). After that the SFU offers whenever subscriptions change, one offer at a
// time. Glare: the SFU is the IMPOLITE side — a client offer arriving while an SFU offer is
// outstanding is ignored; the client (polite) rolls back, answers, and re-offers later.
import { randomBytes } from 'node:crypto';
import type { TurnCredentials } from '../webrtc/credentials.ts';
import { refreshDelayMs } from '../webrtc/credentials.ts';
import type { DisplayInfo, IceCandidateInit, PeerInfo, ServerMessage } from '../webrtc/protocol.ts';
import type { EngineConnection, Producer } from './engine.ts';
import type { Metrics } from './metrics.ts';
import type { RelayPolicy } from './relay-policy.ts';
import { Subscription } from './subscription.ts';
import type { Track } from './track.ts';

export const DATA_PER_SECOND = 50;
export const DATA_BURST = 100;
/** Messages kept for a detached peer; beyond this it cannot be resumed consistently. */
export const MAX_DETACHED_MESSAGES = 256;
/** `preferred-layer` wishes kept per peer (one per publishing peer; a room has at most max_peers_per_room). */
export const MAX_LAYER_WISHES = 256;

/** An error's message for a reply: never empty, whatever was thrown. */
export function errorText(error: unknown, fallback: string): string {
  const text = error instanceof Error ? error.message : typeof error === 'string' ? error : '';
  return text.trim() === '' ? fallback : text;
}

export interface SignalingTransport {
  send(message: ServerMessage): void;
  close(code: number, reason: string): void;
}

export interface PeerDeps {
  metrics: Metrics;
  policy: RelayPolicy;
  issueCredentials: () => TurnCredentials;
}

export class Peer {
  readonly published = new Map<string, Track>();
  readonly subscriptions = new Map<string, Subscription>();
  /** Serializes signaling work: werift state must not be touched by two handlers at once. */
  private chain: Promise<void> = Promise.resolve();
  private firstOfferAnswered = false;
  private offerPending = false;
  private needsOffer = false;
  private refreshTimer?: NodeJS.Timeout;
  /**
   * Tracks to subscribe once the client's first offer is answered: a sending transceiver added
   * before that offer is applied would be matched to one of the client's own m-lines.
   */
  private readonly deferred = new Map<string, Track>();
  private closed = false;
  /** The client's `preferred-layer` per publishing peer (video), for its current and later tracks. */
  private readonly preferredLayers = new Map<string, number>();
  #transport: SignalingTransport;
  /** While detached (its socket closed without leave): what the SFU sent meanwhile, in order. */
  private held: ServerMessage[] | null = null;
  private heldOverflow = false;
  /** Shown by a `resume` of this peer; sent to its client in `joined` only. */
  readonly resumeToken = randomBytes(16).toString('base64url');
  detachTimer?: NodeJS.Timeout;

  /** Data-channel relay budget: every message is copied to every other peer, so it is bounded. */
  private dataTokens = DATA_BURST;
  private dataRefill = Date.now();

  onProducer: (producer: Producer) => void = () => {};
  onData: (label: string, data: string | Buffer) => void = () => {};
  /** The media connection failed. The peer stays: its client may restart ICE or leave. */
  onConnectionFailed: () => void = () => {};

  constructor(
    readonly id: string,
    readonly display: DisplayInfo | undefined,
    readonly subject: string | undefined,
    transport: SignalingTransport,
    readonly connection: EngineConnection,
    private readonly deps: PeerDeps,
  ) {
    this.#transport = transport;
    connection.onLocalCandidate = (candidate) => this.send({ type: 'ice-candidate', candidate });
    connection.onProducer = (producer) => this.onProducer(producer);
    connection.onData = (label, data) => this.onData(label, data);
    connection.onStateChange = (state) => {
      if (state === 'failed') this.onConnectionFailed();
    };
  }

  info(): PeerInfo {
    return { peer_id: this.id, ...(this.display ? { display: this.display } : {}), ...(this.subject ? { subject: this.subject } : {}) };
  }

  get transport(): SignalingTransport {
    return this.#transport;
  }

  get detached(): boolean {
    return this.held !== null;
  }

  send(message: ServerMessage): void {
    if (this.closed) return;
    if (this.held) {
      if (this.held.length < MAX_DETACHED_MESSAGES) this.held.push(message);
      else this.heldOverflow = true;
      return;
    }
    this.#transport.send(message);
  }

  /** Its socket closed without leave: media goes on; messages are held for a resume. */
  detach(): void {
    this.held ??= [];
  }

  /** False if a resume could not replay everything the SFU sent while detached. */
  get resumable(): boolean {
    return !this.closed && !this.heldOverflow;
  }

  /** Binds the peer to a new socket (a resume); the held messages go out on it, in order. */
  attach(transport: SignalingTransport): ServerMessage[] {
    clearTimeout(this.detachTimer);
    const held = this.held ?? [];
    this.held = null;
    this.#transport = transport;
    return held;
  }

  /**
   * `what` names the step for the client: werift's own messages can be empty ("a=candidate"
   * without a value) or about its internals ("Cannot read properties of undefined").
   */
  private enqueue(what: string, work: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.closed) return;
      try {
        await work();
      } catch (error) {
        const detail = errorText(error, '');
        this.send({ type: 'error', code: 'negotiation_failed', message: (detail ? `${what}: ${detail}` : what).slice(0, 200) });
        this.deps.metrics.reject('negotiation_failed');
      }
    });
    return this.chain;
  }

  allowDataMessage(): boolean {
    const now = Date.now();
    this.dataTokens = Math.min(DATA_BURST, this.dataTokens + ((now - this.dataRefill) / 1000) * DATA_PER_SECOND);
    this.dataRefill = now;
    if (this.dataTokens < 1) return false;
    this.dataTokens -= 1;
    return true;
  }

  // ---- credentials ----
  startCredentials(): void {
    const credentials = this.deps.issueCredentials();
    this.send({ type: 'turn-credentials', ...credentials });
    this.scheduleRefresh(credentials);
  }

  /**
   * At 80% of the TTL — measured back from the expiry in the username, which is whole seconds
   * (issued at a fraction of a second, the credentials live up to 1 s less than the TTL).
   */
  private scheduleRefresh(current: TurnCredentials): void {
    const expiryMs = Number(current.username.split(':')[0]) * 1000;
    const delay = Math.max(0, Math.min(refreshDelayMs(current.ttl), expiryMs - Date.now() - (current.ttl * 1000 - refreshDelayMs(current.ttl))));
    this.refreshTimer = setTimeout(() => {
      const credentials = this.deps.issueCredentials();
      this.deps.metrics.credentialRefreshes++;
      this.send({ type: 'refresh-credentials', ...credentials });
      this.scheduleRefresh(credentials);
    }, delay);
    this.refreshTimer.unref();
  }

  // ---- negotiation ----
  handleOffer(sdp: string): Promise<void> {
    return this.enqueue('the offer could not be applied', async () => {
      if (this.connection.signalingState === 'have-local-offer') {
        this.deps.metrics.glareOffersIgnored++;
        return;
      }
      const filtered = this.deps.policy.filterSdp(sdp);
      this.deps.metrics.droppedCandidates.sdp += filtered.dropped;
      const answer = await this.connection.acceptOffer(filtered.sdp);
      this.send({ type: 'answer', sdp: answer });
      if (!this.firstOfferAnswered) {
        this.firstOfferAnswered = true;
        for (const track of this.deferred.values()) this.subscribe(track);
        this.deferred.clear();
      }
      this.offerIfNeeded();
    });
  }

  handleAnswer(sdp: string): Promise<void> {
    return this.enqueue('the answer could not be applied', async () => {
      if (this.connection.signalingState !== 'have-local-offer') {
        this.send({ type: 'error', code: 'invalid_message', message: 'answer without an outstanding SFU offer' });
        this.deps.metrics.reject('invalid_message');
        return;
      }
      const filtered = this.deps.policy.filterSdp(sdp);
      this.deps.metrics.droppedCandidates.sdp += filtered.dropped;
      await this.connection.acceptAnswer(filtered.sdp);
      this.offerPending = false;
      this.offerIfNeeded();
    });
  }

  handleCandidate(candidate: IceCandidateInit | null): Promise<void> {
    if (candidate && candidate.candidate !== '' && !this.deps.policy.allowsCandidate(candidate.candidate)) {
      this.deps.metrics.droppedCandidates.signaling++;
      return Promise.resolve();
    }
    return this.enqueue('the candidate could not be added', () => this.connection.addRemoteCandidate(candidate));
  }

  requestNegotiation(): void {
    this.needsOffer = true;
    void this.enqueue('renegotiation failed', async () => this.offerIfNeeded());
  }

  private offerIfNeeded(): void {
    if (!this.needsOffer || !this.firstOfferAnswered || this.offerPending) return;
    if (this.connection.signalingState !== 'stable') return;
    this.needsOffer = false;
    this.offerPending = true;
    void this.enqueue('the SFU could not make an offer', async () => {
      try {
        const sdp = await this.connection.createOffer();
        this.send({ type: 'offer', sdp });
      } catch (error) {
        // Not outstanding: the next subscription change offers again (else this peer never would).
        this.offerPending = false;
        throw error;
      }
    });
  }

  // ---- subscriptions ----
  subscribe(track: Track): void {
    if (this.subscriptions.has(track.id) || this.closed) return;
    if (!this.firstOfferAnswered) {
      this.deferred.set(track.id, track);
      return;
    }
    const consumer = this.connection.consume(track.producer, track.publisherId);
    const layer = this.preferredLayers.get(track.publisherId);
    if (layer !== undefined && track.kind === 'video') consumer.setPreferredLayer(layer);
    const subscription = new Subscription(track, this.id, consumer);
    track.subscriptions.add(subscription);
    this.subscriptions.set(track.id, subscription);
    this.requestNegotiation();
  }

  /** `preferred-layer`: at most this layer of `publisherId`'s video, now and for its later tracks. */
  preferLayer(publisherId: string, layer: number): void {
    if (!this.preferredLayers.has(publisherId) && this.preferredLayers.size >= MAX_LAYER_WISHES) return;
    this.preferredLayers.set(publisherId, layer);
    for (const subscription of this.subscriptions.values()) {
      if (subscription.track.publisherId === publisherId && subscription.track.kind === 'video') subscription.consumer.setPreferredLayer(layer);
    }
  }

  unsubscribe(track: Track): void {
    this.deferred.delete(track.id);
    const subscription = this.subscriptions.get(track.id);
    if (!subscription) return;
    track.subscriptions.delete(subscription);
    this.subscriptions.delete(track.id);
    this.connection.stopConsumer(subscription.consumer);
    this.requestNegotiation();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.refreshTimer);
    clearTimeout(this.detachTimer);
    for (const subscription of this.subscriptions.values()) subscription.track.subscriptions.delete(subscription);
    this.subscriptions.clear();
    for (const track of this.published.values()) track.close();
    await this.connection.close();
  }
}
