// Sfu: the rooms of one namespace on one node, the media engine, the relay policy, the metrics
// and the draining state. Transport-agnostic: server.ts feeds it WebSocket sessions.
import { randomBytes } from 'node:crypto';
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
      room = new Room(roomName, this.metrics);
      this.rooms.set(roomName, room);
    }
    const peerId = randomBytes(6).toString('hex');
    // A peer without a subject (signaling straight to the SFU, tests) gets a quota of its own.
    const subject = info.subject ?? `peer-${peerId}`;
    const peer = new Peer(peerId, info.display, info.subject, transport, this.engine.createConnection(), {
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

  metricsText(): string {
    let tracks = 0;
    let subscriptions = 0;
    let mediaSections = 0;
    let mediaSectionsMax = 0;
    for (const room of this.rooms.values()) {
      tracks += room.tracks.size;
      for (const track of room.tracks.values()) subscriptions += track.subscriptions.size;
      for (const peer of room.peers.values()) {
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
      tracks,
      subscriptions,
      mediaSections,
      mediaSectionsMax,
      heapUsedBytes: memory.heapUsed,
      residentBytes: memory.rss,
      ...this.engine.totals(),
    });
  }
}
