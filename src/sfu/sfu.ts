// Sfu: the rooms of one namespace on one node, the media engine, the relay policy, the metrics
// and the draining state. Transport-agnostic: server.ts feeds it WebSocket sessions.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { issueTurnCredentials, type TurnCredentials } from '../webrtc/credentials.ts';
import type { SfuConfig } from './config.ts';
import type { MediaEngine } from './engine.ts';
import { Metrics } from './metrics.ts';
import { Peer, type SignalingTransport } from './peer.ts';
import { RelayPolicy } from './relay-policy.ts';
import { Room } from './room.ts';

export class Sfu {
  readonly rooms = new Map<string, Room>();
  readonly metrics = new Metrics();
  readonly policy: RelayPolicy;
  draining = false;
  /** Structured event log (main.ts writes JSON lines); never given secrets. */
  log: (event: string, fields?: Record<string, unknown>) => void = () => {};
  private drainWaiters: (() => void)[] = [];

  constructor(
    readonly config: SfuConfig,
    readonly engine: MediaEngine,
  ) {
    this.policy = new RelayPolicy(config.turnRelayIps);
  }

  /** TURN credentials for one peer: its subject (vouched for by the gateway) is coturn's quota key. */
  issueCredentials(subject: string): TurnCredentials {
    return issueTurnCredentials({
      secret: this.config.turnSecret.reveal(),
      namespace: this.config.namespace,
      subject,
      urls: this.config.turnUrls,
      ttl: this.config.credentialTtl,
    });
  }

  peerCount(): number {
    let n = 0;
    for (const room of this.rooms.values()) n += room.size;
    return n;
  }

  /** Refuses (returns an error code) or creates the peer and joins it to the room. */
  join(roomName: string, transport: SignalingTransport, info: { display?: { name?: string }; subject?: string }): Peer | 'draining' | 'room_full' {
    if (this.draining) {
      this.metrics.refusedJoins++;
      return 'draining';
    }
    let room = this.rooms.get(roomName);
    if (room && room.size >= this.config.maxPeersPerRoom) {
      this.metrics.refusedJoins++;
      return 'room_full';
    }
    if (!room) {
      room = new Room(roomName, this.metrics, this.engine);
      this.rooms.set(roomName, room);
    }
    const peerId = randomBytes(6).toString('hex');
    // A peer without a subject (signaling straight to the SFU, tests) gets a quota of its own.
    const subject = info.subject ?? `peer-${peerId}`;
    const peer = new Peer(peerId, info.display, info.subject, transport, this.engine.createConnection(roomName), {
      metrics: this.metrics,
      policy: this.policy,
      issueCredentials: () => this.issueCredentials(subject),
    });
    peer.onConnectionFailed = () => this.log('media-failed', { room: roomName, peer: peer.id });
    room.join(peer);
    this.log('peer-joined', { room: roomName, peer: peer.id, subject: info.subject });
    peer.startCredentials();
    return peer;
  }

  /**
   * Its signaling socket closed without leave (a gateway restarted, the network blinked): the
   * peer stays — its media flows on — for resume_grace_s (RESUME_GRACE_S), for its client to resume it.
   */
  detach(room: Room, peer: Peer, reason: string): void {
    if (room.peers.get(peer.id) !== peer || peer.detached) return;
    // A draining SFU takes no resume: its peers are to join elsewhere.
    if (this.draining) return void this.leave(room, peer, reason);
    peer.detach();
    const grace = this.config.resumeGraceS;
    this.log('peer-detached', { room: room.name, peer: peer.id, reason, grace_s: grace });
    peer.detachTimer = setTimeout(() => void this.leave(room, peer, `${reason}; not resumed within ${grace} s`), grace * 1000);
    peer.detachTimer.unref();
  }

  /**
   * A new socket takes over a peer: the right room, peer id, token and subject (the gateway
   * vouches for the subject). A peer still bound to another socket is taken from it.
   */
  resume(roomName: string, peerId: string, token: string, subject: string | undefined, transport: SignalingTransport): { peer: Peer; room: Room } | string {
    if (this.draining) return 'this SFU is draining: join again to be placed on another one';
    const room = this.rooms.get(roomName);
    const peer = room?.peers.get(peerId);
    const a = Buffer.from(token);
    const b = Buffer.from(peer?.resumeToken ?? '');
    if (!room || !peer || a.length !== b.length || !timingSafeEqual(a, b) || peer.subject !== subject) {
      return `no peer ${peerId} to resume in room "${roomName}" on this SFU: join again`;
    }
    if (!peer.resumable) return `peer ${peerId} missed too many messages while away: join again`;
    const old = peer.transport;
    const held = peer.attach(transport);
    if (old !== transport) old.close(4002, 'resumed on another connection');
    this.metrics.resumes++;
    this.log('peer-resumed', { room: room.name, peer: peer.id, held: held.length });
    transport.send({ type: 'resumed', room: room.name, peer_id: peer.id, peers: [...room.peers.values()].filter((p) => p !== peer).map((p) => p.info()) });
    for (const message of held) transport.send(message);
    return { peer, room };
  }

  async leave(room: Room, peer: Peer, reason: string): Promise<void> {
    if (room.peers.get(peer.id) === peer) this.log('peer-left', { room: room.name, peer: peer.id, reason });
    await room.leave(peer);
    if (room.size === 0 && this.rooms.get(room.name) === room) this.rooms.delete(room.name);
    if (this.draining && this.peerCount() === 0) this.drainWaiters.splice(0).forEach((resolve) => resolve());
  }

  /** Tells the room's peers and disconnects them. Returns false if there is no such room. */
  async closeRoom(name: string): Promise<boolean> {
    const room = this.rooms.get(name);
    if (!room) return false;
    for (const peer of [...room.peers.values()]) {
      peer.send({ type: 'room-closed', room: name });
      peer.transport.close(4001, 'room closed');
      await this.leave(room, peer, 'room closed');
    }
    return true;
  }

  /** Announces draining, refuses new joins, resolves when every peer left or the deadline passed. */
  drain(deadlineS = this.config.drainDeadlineS): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      for (const room of this.rooms.values()) {
        for (const peer of room.peers.values()) peer.send({ type: 'server-draining', deadline_s: deadlineS });
      }
    }
    if (this.peerCount() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, deadlineS * 1000);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const room of [...this.rooms.values()]) {
      for (const peer of [...room.peers.values()]) {
        peer.transport.close(1001, 'server shutting down');
        await this.leave(room, peer, 'server shutting down');
      }
    }
  }

  async metricsText(): Promise<string> {
    let tracks = 0;
    let subscriptions = 0;
    let detached = 0;
    let mediaSections = 0;
    let mediaSectionsMax = 0;
    for (const room of this.rooms.values()) {
      tracks += room.tracks.size;
      for (const track of room.tracks.values()) subscriptions += track.subscriptions.size;
      for (const peer of room.peers.values()) {
        if (peer.detached) detached++;
        const n = peer.connection.mediaSections();
        mediaSections += n;
        mediaSectionsMax = Math.max(mediaSectionsMax, n);
      }
    }
    const memory = process.memoryUsage();
    return this.metrics.render({
      namespace: this.config.namespace,
      draining: this.draining,
      rooms: this.rooms.size,
      peers: this.peerCount(),
      detached,
      tracks,
      subscriptions,
      mediaSections,
      mediaSectionsMax,
      heapUsedBytes: memory.heapUsed,
      residentBytes: memory.rss,
      ...(await this.engine.totals()),
      engine: this.engine.name,
      workers: await this.engine.workers(),
    });
  }
}
