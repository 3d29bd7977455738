// Room: the peers of one call and the tracks they publish. Every peer subscribes to every other
// peer's tracks; data channel messages are relayed to every other peer on the same label.
import { PROTOCOL_VERSION } from '../webrtc/protocol.ts';
import type { MediaEngine, Producer } from './engine.ts';
import type { Metrics } from './metrics.ts';
import type { Peer } from './peer.ts';
import { Track } from './track.ts';

export class Room {
  readonly peers = new Map<string, Peer>();
  readonly tracks = new Map<string, Track>();

  constructor(
    readonly name: string,
    private readonly metrics: Metrics,
    /** What `joined` tells each client of the engine: simulcast, its header extension ids. */
    private readonly engine: Pick<MediaEngine, 'simulcast' | 'headerExtensions'> = { simulcast: false },
  ) {}

  get size(): number {
    return this.peers.size;
  }

  /** Adds the peer, subscribes it to existing tracks, announces it to the others. */
  join(peer: Peer): void {
    const others = [...this.peers.values()];
    this.peers.set(peer.id, peer);
    peer.send({
      type: 'joined', protocol_version: PROTOCOL_VERSION, room: this.name, peer_id: peer.id, peers: others.map((p) => p.info()), resume_token: peer.resumeToken,
      ...(this.engine.simulcast ? { simulcast: true } : {}),
      ...(this.engine.headerExtensions ? { header_extensions: { ...this.engine.headerExtensions } } : {}),
    });
    for (const other of others) other.send({ type: 'peer-joined', ...peer.info() });
    peer.onProducer = (producer) => this.publish(peer, producer);
    peer.onData = (label, data) => this.relay(peer, label, data);
    for (const track of this.tracks.values()) peer.subscribe(track);
  }

  private publish(peer: Peer, producer: Producer): void {
    if (!this.peers.has(peer.id)) return;
    const track = new Track(`${peer.id}/${producer.id}`, peer.id, producer);
    this.tracks.set(track.id, track);
    peer.published.set(track.id, track);
    for (const other of this.peers.values()) if (other !== peer) other.subscribe(track);
  }

  private relay(from: Peer, label: string, data: string | Buffer): void {
    if (!from.allowDataMessage()) {
      this.metrics.dataMessagesDropped++;
      return;
    }
    for (const other of this.peers.values()) {
      if (other !== from && other.connection.sendData(label, data)) this.metrics.dataMessagesRelayed++;
    }
  }

  /** Removes the peer, its tracks and its subscriptions; tells the others. */
  async leave(peer: Peer): Promise<void> {
    if (this.peers.get(peer.id) !== peer) return;
    this.peers.delete(peer.id);
    for (const track of peer.published.values()) {
      for (const other of this.peers.values()) other.unsubscribe(track);
      this.tracks.delete(track.id);
    }
    for (const other of this.peers.values()) other.send({ type: 'peer-left', peer_id: peer.id });
    await peer.close();
  }
}
