// Room → SFU affinity. A room lives on one SFU node (webrtc_rooms.sfu_node) so that all its
// peers meet there. A new room goes to the least-loaded healthy SFU (fewest peers per its
// /health, then fewest rooms in the store, then node name); a room whose SFU is down, draining
// or no longer configured is moved to another one, and clients reconnecting land there.
// The move is a compare-and-set in the store, so gateways on three nodes agree on one SFU.
import type { Room, Store } from '../store/store.ts';
import type { Secret } from '../secret/secret.ts';
import type { SfuNode } from './config.ts';
import { HttpError } from './errors.ts';
import { SFU_HEADERS, SFU_PATHS } from '../webrtc/sfu-api.ts';

export interface SfuHealth { ok: boolean; peers: number; status: string }

export class Affinity {
  readonly #nodes: Map<string, SfuNode>;
  readonly #health = new Map<string, { at: number; value: Promise<SfuHealth> }>();
  readonly #peers = new Map<string, { at: number; value: Promise<Map<string, number> | null> }>();

  constructor(
    private readonly store: Store,
    private readonly namespace: string,
    nodes: SfuNode[],
    private readonly internalKey: Secret,
    private readonly opts: { healthCacheMs: number; timeoutMs?: number },
  ) {
    this.#nodes = new Map(nodes.map((n) => [n.node, n]));
  }

  node(name: string): SfuNode | undefined {
    return this.#nodes.get(name);
  }

  baseUrl(n: SfuNode): string {
    return `http://${n.ip.includes(':') ? `[${n.ip}]` : n.ip}:${n.signal_port}`;
  }

  /** GET /health of the node's SFU: 200 = serving; anything else (503 draining, no answer) = not. */
  health(name: string): Promise<SfuHealth> {
    const n = this.#nodes.get(name);
    if (!n) return Promise.resolve({ ok: false, peers: 0, status: 'not configured' });
    const cached = this.#health.get(name);
    if (cached && Date.now() - cached.at < this.opts.healthCacheMs) return cached.value;
    const value = (async (): Promise<SfuHealth> => {
      try {
        const res = await fetch(`${this.baseUrl(n)}${SFU_PATHS.health}`, { signal: AbortSignal.timeout(this.opts.timeoutMs ?? 1000) });
        const body = await res.json().catch(() => ({})) as { peers?: unknown; status?: unknown };
        const peers = typeof body.peers === 'number' ? body.peers : 0;
        return { ok: res.status === 200, peers, status: typeof body.status === 'string' ? body.status : `HTTP ${res.status}` };
      } catch (e) {
        return { ok: false, peers: 0, status: (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name };
      }
    })();
    this.#health.set(name, { at: Date.now(), value });
    return value;
  }

  /** Called when connecting to a node failed: do not trust a cached "healthy" any longer. */
  markDown(name: string): void {
    this.#health.set(name, { at: Date.now(), value: Promise.resolve({ ok: false, peers: 0, status: 'connect failed' }) });
  }

  /** The node a room should be on, given its current node (null for a new room). */
  async pick(current: string | null): Promise<string> {
    if (current !== null && (await this.health(current)).ok) return current;
    const names = [...this.#nodes.keys()].filter((n) => n !== current);
    const health = await Promise.all(names.map((n) => this.health(n)));
    const healthy = names.map((n, i) => ({ n, h: health[i] })).filter((x) => x.h.ok);
    if (healthy.length === 0) {
      throw new HttpError(503, 'unavailable', `no healthy SFU for namespace "${this.namespace}" (${[...this.#nodes.keys()].join(', ')})`, { 'retry-after': '2' });
    }
    const rooms = await this.store.roomCountsByNode(this.namespace);
    healthy.sort((a, b) => a.h.peers - b.h.peers || (rooms.get(a.n) ?? 0) - (rooms.get(b.n) ?? 0) || a.n.localeCompare(b.n));
    return healthy[0].n;
  }

  /** Creates the room on the best node, or keeps / moves an existing one. */
  place(roomId: string, owner: string): Promise<Room> {
    return this.store.assignRoom(this.namespace, roomId, owner, (cur) => this.pick(cur));
  }

  /** Asks the room's SFU to close it (its peers are told); true if the SFU answered 2xx/404. */
  async closeOnSfu(room: Room): Promise<{ notified: boolean; status?: number }> {
    const n = this.#nodes.get(room.sfuNode);
    if (!n) return { notified: false };
    try {
      const res = await fetch(`${this.baseUrl(n)}${SFU_PATHS.rooms}/${encodeURIComponent(room.roomId)}`, {
        method: 'DELETE',
        headers: { [SFU_HEADERS.internalKey]: this.internalKey.reveal(), [SFU_HEADERS.namespace]: this.namespace },
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 2000),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok || res.status === 404) return { notified: true, status: res.status };
      return { notified: false, status: res.status };
    } catch {
      return { notified: false };
    }
  }

  /** Peers per room on one SFU, reused for healthCacheMs (a listing must not fan out per request). */
  roomPeers(name: string): Promise<Map<string, number> | null> {
    const cached = this.#peers.get(name);
    if (cached && Date.now() - cached.at < this.opts.healthCacheMs) return cached.value;
    const value = this.#fetchRoomPeers(name);
    this.#peers.set(name, { at: Date.now(), value });
    return value;
  }

  /** GET /rooms of the SFU with the internal key; null if it cannot say. */
  async #fetchRoomPeers(name: string): Promise<Map<string, number> | null> {
    const n = this.#nodes.get(name);
    if (!n) return null;
    try {
      const res = await fetch(`${this.baseUrl(n)}${SFU_PATHS.rooms}`, {
        headers: { [SFU_HEADERS.internalKey]: this.internalKey.reveal(), [SFU_HEADERS.namespace]: this.namespace },
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 1000),
      });
      if (res.status !== 200) { await res.arrayBuffer().catch(() => undefined); return null; }
      const body = await res.json() as { rooms?: { room?: unknown; peers?: unknown }[] };
      if (!Array.isArray(body.rooms)) return null;
      return new Map(body.rooms.filter((r) => typeof r.room === 'string' && typeof r.peers === 'number').map((r) => [r.room as string, r.peers as number]));
    } catch {
      return null;
    }
  }
}
