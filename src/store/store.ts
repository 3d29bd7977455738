// The state store: one interface for the namespace orchestrator, the gateway and the operator
// CLI, implemented by an embedded SQLite file (sqlite.ts) and by rqlite over HTTP (rqlite.ts).
// Both drivers run the same SQL (schema.ts, queries.ts); only the transport differs.
import type { Secret } from '../secret/secret.ts';

export const PORT_KINDS = ['sfu_signal', 'sfu_media', 'turn_listen', 'turn_relay'] as const;
export type PortKind = (typeof PORT_KINDS)[number];

/** The seed's port allocation table: range per node and block size per namespace. */
export const PORT_PLAN: Record<PortKind, { rangeMin: number; rangeMax: number; size: number }> = {
  sfu_signal: { rangeMin: 30000, rangeMax: 30099, size: 1 },
  sfu_media: { rangeMin: 20000, rangeMax: 29999, size: 500 },
  // 3478 is the standard port; only one coturn may own it per IP, so further namespaces on one
  // node get the next ports (webrtc-facts.md).
  turn_listen: { rangeMin: 3478, rangeMax: 3577, size: 1 },
  turn_relay: { rangeMin: 49152, rangeMax: 65535, size: 800 },
};

/**
 * First gap of `size` ports in [min, max] among `taken` (any order), or null. The one port rule:
 * the store allocates with it and `orama namespace enable --plan` predicts with it.
 */
export function firstFreeBlock(taken: { portStart: number; portEnd: number }[], size: number, min: number, max: number): number | null {
  let cursor = min;
  for (const a of [...taken].sort((x, y) => x.portStart - y.portStart)) {
    if (a.portEnd < cursor) continue;
    if (a.portStart > cursor + size - 1) break;
    cursor = a.portEnd + 1;
  }
  return cursor + size - 1 <= max ? cursor : null;
}


export interface WebrtcConfig {
  namespace: string;
  enabled: boolean;
  turnSecret: Secret;
  sfuNodeCount: number;
  turnNodeCount: number;
  turnTtl: number;
  /** The SFU engine the namespace runs (`orama namespace enable webrtc --sfu-engine`); null: none recorded. */
  sfuEngine: string | null;
  createdAt: number; // unix seconds
  updatedAt: number;
}
/** `sfuEngine` left out (or null): the namespace keeps the engine it has. */
export type WebrtcConfigInput = Omit<WebrtcConfig, 'createdAt' | 'updatedAt' | 'sfuEngine'> & { sfuEngine?: string | null };

export interface PortAllocation {
  node: string;
  namespace: string;
  kind: PortKind;
  portStart: number;
  portEnd: number; // inclusive
  createdAt: number;
}

export interface Room {
  namespace: string;
  roomId: string;
  sfuNode: string;
  owner: string; // subject that created it
  createdAt: number;
}

export interface DnsRecord {
  namespace: string;
  name: string;
  type: 'A' | 'AAAA' | 'CNAME' | 'TXT';
  value: string;
  ttl: number;
}

export interface ApiKeyInfo {
  id: string;
  namespace: string;
  subject: string;
  owner: boolean;
  createdAt: number;
  revokedAt: number | null;
}

/** An API key as stored: what a second store needs to verify it (never the key itself). */
export interface ApiKeyRecord extends ApiKeyInfo {
  /** Hex SHA-256 of the whole key. */
  hash: string;
}

export type { JwtAlg, JwtKey } from '../webrtc/tokens.ts';
import type { JwtAlg, JwtKey } from '../webrtc/tokens.ts';

export interface Store {
  readonly driver: 'sqlite' | 'rqlite';
  /** Applies pending migrations; idempotent and safe when several processes race. */
  migrate(): Promise<number>;
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
  /** A trivial round trip: the gateway's /health. */
  ping(): Promise<void>;

  getWebrtcConfig(namespace: string): Promise<WebrtcConfig | null>;
  putWebrtcConfig(config: WebrtcConfigInput): Promise<WebrtcConfig>;
  /** Removes the config and the namespace's rooms (the seed's disable step 5). */
  deleteWebrtcConfig(namespace: string): Promise<boolean>;
  listWebrtcConfigs(): Promise<WebrtcConfig[]>;

  /**
   * The first free block of `size` ports in [rangeMin, rangeMax] on `node`, recorded for
   * (namespace, kind). Idempotent: a namespace that already holds a block of this kind on this node
   * gets that block back. Race-safe across processes and rqlite nodes: the insert is conditional
   * on no overlap and guarded by UNIQUE constraints; losers retry with a fresh read.
   */
  allocatePorts(node: string, namespace: string, kind: PortKind, size: number, rangeMin: number, rangeMax: number): Promise<PortAllocation>;
  /** Frees every block of the namespace (optionally on one node); returns how many. */
  releasePorts(namespace: string, node?: string): Promise<number>;
  listAllocations(filter?: { namespace?: string; node?: string; kind?: PortKind }): Promise<PortAllocation[]>;

  getRoom(namespace: string, roomId: string): Promise<Room | null>;
  listRooms(namespace: string): Promise<Room[]>;
  /** Inserts unless the room exists; returns the stored room and whether this call created it. */
  createRoom(room: Omit<Room, 'createdAt'>): Promise<{ room: Room; created: boolean }>;
  deleteRoom(namespace: string, roomId: string): Promise<boolean>;
  /** Rooms per SFU node of the namespace (strong read): the load the affinity balances. */
  roomCountsByNode(namespace: string): Promise<Map<string, number>>;
  /**
   * Room → SFU affinity as compare-and-set: reads the room (strong), asks pickNode for the node
   * it should have (given its current node or null), and writes only if still unchanged, retrying
   * when another gateway moved it first. Creates the room (owned by `owner`) when absent.
   */
  assignRoom(namespace: string, roomId: string, owner: string,
    pickNode: (current: string | null) => string | Promise<string>): Promise<Room>;

  setDnsRecords(namespace: string, records: Omit<DnsRecord, 'namespace'>[]): Promise<void>;
  listDnsRecords(namespace: string): Promise<DnsRecord[]>;
  deleteDnsRecords(namespace: string): Promise<number>;

  /** Returns the plaintext key once (format `oak_<id>_<secret>`); only its SHA-256 is stored. */
  createApiKey(input: { namespace: string; subject: string; owner: boolean }): Promise<{ key: Secret; info: ApiKeyInfo }>;
  /** The key's principal if it exists, matches and is not revoked; null otherwise. */
  verifyApiKey(key: string): Promise<ApiKeyInfo | null>;
  revokeApiKey(namespace: string, id: string): Promise<boolean>;
  listApiKeys(namespace: string): Promise<ApiKeyInfo[]>;
  /** The namespace's key records, revoked ones included, to copy into another store. */
  exportApiKeys(namespace: string): Promise<ApiKeyRecord[]>;
  /** Adds the records this store lacks and carries revocations over (a revoked key is never
   * un-revoked). Returns how many rows changed. */
  importApiKeys(records: ApiKeyRecord[]): Promise<number>;

  getJwtKey(namespace: string): Promise<JwtKey | null>;
  /** Stores the key unless one exists (first writer wins); returns the stored one. */
  putJwtKeyIfAbsent(key: Omit<JwtKey, 'createdAt'>): Promise<JwtKey>;
}

export class StoreError extends Error {
  constructor(message: string, readonly code: 'ports_exhausted' | 'conflict' | 'unavailable' | 'invalid' | 'schema') {
    super(message);
    this.name = 'StoreError';
  }
}
