// The Store, written once in SQL over a minimal executor; sqlite.ts and rqlite.ts supply the
// executor. Every multi-statement write is one transaction, and every write whose correctness
// depends on what is already there is a conditional statement guarded by a constraint, so it
// holds with many writers on one SQLite file or many gateways on one rqlite cluster.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { MIGRATIONS, MIGRATIONS_TABLE } from './schema.ts';
export { firstFreeBlock } from './store.ts';
import { Secret } from '../secret/secret.ts';
import { NAMESPACE_RE } from '../webrtc/names.ts';
import {
  PORT_KINDS, StoreError,
  type ApiKeyInfo, type ApiKeyRecord, type DnsRecord, type JwtAlg, type JwtKey, type PortAllocation, type PortKind,
  type Room, type Store, type WebrtcConfig, type WebrtcConfigInput,
  firstFreeBlock,
} from './store.ts';

export type SqlValue = string | number | null;
export type Row = Record<string, SqlValue>;
export type Statement = [sql: string, ...params: SqlValue[]];

/** A statement failed a UNIQUE / PRIMARY KEY / CHECK constraint; `message` is SQLite's text. */
export class ConstraintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConstraintError';
  }
}

export interface SqlExecutor {
  /** `strong`: the read must see every write acknowledged before it (rqlite level=strong). */
  query(stmt: Statement, opts?: { strong?: boolean }): Promise<Row[]>;
  /** All statements in one transaction (all or nothing); rows affected per statement. */
  execute(stmts: Statement[]): Promise<number[]>;
  close(): Promise<void>;
}

const API_KEY_RE = /^oak_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const now = () => Math.floor(Date.now() / 1000);

function invalid(field: string, msg: string): never {
  throw new StoreError(`${field}: ${msg}`, 'invalid');
}
function checkNamespace(ns: string, field = 'namespace'): void {
  if (typeof ns !== 'string' || !NAMESPACE_RE.test(ns)) invalid(field, `invalid namespace name ${JSON.stringify(ns)}`);
}
function checkText(v: string, field: string, max = 255): void {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) invalid(field, `must be a non-empty string of at most ${max} characters`);
}
function checkInt(v: number, field: string, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) invalid(field, `must be an integer in [${min}, ${max}], got ${v}`);
}

const toConfig = (r: Row): WebrtcConfig => ({
  namespace: r.namespace as string,
  enabled: r.enabled === 1,
  turnSecret: new Secret(r.turn_secret as string),
  sfuNodeCount: r.sfu_node_count as number,
  turnNodeCount: r.turn_node_count as number,
  turnTtl: r.turn_ttl as number,
  sfuEngine: (r.sfu_engine as string | null | undefined) ?? null,
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
});
const toAllocation = (r: Row): PortAllocation => ({
  node: r.node as string,
  namespace: r.namespace as string,
  kind: r.kind as PortKind,
  portStart: r.port_start as number,
  portEnd: r.port_end as number,
  createdAt: r.created_at as number,
});
const toRoom = (r: Row): Room => ({
  namespace: r.namespace as string,
  roomId: r.room_id as string,
  sfuNode: r.sfu_node as string,
  owner: r.owner as string,
  createdAt: r.created_at as number,
});
const toApiKey = (r: Row): ApiKeyInfo => ({
  id: r.id as string,
  namespace: r.namespace as string,
  subject: r.subject as string,
  owner: r.owner === 1,
  createdAt: r.created_at as number,
  revokedAt: (r.revoked_at as number | null) ?? null,
});
const toJwtKey = (r: Row): JwtKey => ({
  namespace: r.namespace as string,
  alg: r.alg as JwtAlg,
  kid: r.kid as string,
  signingKey: new Secret(r.signing_key as string),
  publicKey: (r.public_key as string | null) ?? null,
  createdAt: r.created_at as number,
});

const MAX_ATTEMPTS = 200;

export class SqlStore implements Store {
  constructor(readonly driver: 'sqlite' | 'rqlite', protected readonly db: SqlExecutor) {}

  async migrate(): Promise<number> {
    await this.db.execute([[MIGRATIONS_TABLE]]);
    let applied = 0;
    for (const m of MIGRATIONS) {
      if ((await this.schemaVersion()) >= m.version) continue;
      try {
        await this.db.execute([
          ...m.statements.map((s): Statement => [s]),
          ['INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)', m.version, m.description, now()],
        ]);
        applied++;
      } catch (e) {
        // Another process applied it between our read and our write: its transaction won (our
        // schema_migrations row broke the version's key, or a statement that cannot run twice,
        // ADD COLUMN, failed first).
        if (e instanceof ConstraintError || (await this.schemaVersion()) >= m.version) continue;
        throw new StoreError(`migration ${m.version} (${m.description}) failed: ${(e as Error).message}`, 'schema');
      }
    }
    return applied;
  }

  async schemaVersion(): Promise<number> {
    const rows = await this.db.query(['SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations'], { strong: true });
    return Number(rows[0]?.v ?? 0);
  }

  async ping(): Promise<void> {
    await this.db.query(['SELECT 1 AS one']);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // ---- namespace_webrtc_config ----
  async getWebrtcConfig(namespace: string): Promise<WebrtcConfig | null> {
    const rows = await this.db.query(['SELECT * FROM namespace_webrtc_config WHERE namespace = ?', namespace]);
    return rows[0] ? toConfig(rows[0]) : null;
  }

  async putWebrtcConfig(c: WebrtcConfigInput): Promise<WebrtcConfig> {
    checkNamespace(c.namespace);
    if (!c.turnSecret || c.turnSecret.reveal().length < 16) invalid('turnSecret', 'must be at least 16 characters');
    checkInt(c.sfuNodeCount, 'sfuNodeCount', 1, 64);
    checkInt(c.turnNodeCount, 'turnNodeCount', 1, 64);
    checkInt(c.turnTtl, 'turnTtl', 1, 86400);
    if (c.sfuEngine != null && !(typeof c.sfuEngine === 'string' && /^[a-z][a-z0-9-]{0,31}$/.test(c.sfuEngine))) invalid('sfuEngine', `must be an engine name, got ${JSON.stringify(c.sfuEngine)}`);
    const t = now();
    // sfu_engine: a value given replaces the namespace's; none given keeps it.
    await this.db.execute([[
      `INSERT INTO namespace_webrtc_config (namespace, enabled, turn_secret, sfu_node_count, turn_node_count, turn_ttl, sfu_engine, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (namespace) DO UPDATE SET enabled = excluded.enabled, turn_secret = excluded.turn_secret,
         sfu_node_count = excluded.sfu_node_count, turn_node_count = excluded.turn_node_count,
         turn_ttl = excluded.turn_ttl, sfu_engine = COALESCE(excluded.sfu_engine, namespace_webrtc_config.sfu_engine),
         updated_at = excluded.updated_at`,
      c.namespace, c.enabled ? 1 : 0, c.turnSecret.reveal(), c.sfuNodeCount, c.turnNodeCount, c.turnTtl, c.sfuEngine ?? null, t, t,
    ]]);
    const rows = await this.db.query(['SELECT * FROM namespace_webrtc_config WHERE namespace = ?', c.namespace], { strong: true });
    return toConfig(rows[0]);
  }

  async deleteWebrtcConfig(namespace: string): Promise<boolean> {
    const [n] = await this.db.execute([
      ['DELETE FROM namespace_webrtc_config WHERE namespace = ?', namespace],
      ['DELETE FROM webrtc_rooms WHERE namespace = ?', namespace],
    ]);
    return n > 0;
  }

  async listWebrtcConfigs(): Promise<WebrtcConfig[]> {
    return (await this.db.query(['SELECT * FROM namespace_webrtc_config ORDER BY namespace'])).map(toConfig);
  }

  // ---- webrtc_port_allocations ----
  async allocatePorts(node: string, namespace: string, kind: PortKind, size: number, rangeMin: number, rangeMax: number): Promise<PortAllocation> {
    checkText(node, 'node', 253);
    checkNamespace(namespace);
    if (!PORT_KINDS.includes(kind)) invalid('kind', `must be one of ${PORT_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
    checkInt(rangeMin, 'rangeMin', 1, 65535);
    checkInt(rangeMax, 'rangeMax', rangeMin, 65535);
    checkInt(size, 'size', 1, rangeMax - rangeMin + 1);

    const mine = async () => {
      const rows = await this.db.query(['SELECT * FROM webrtc_port_allocations WHERE node = ? AND namespace = ? AND kind = ?', node, namespace, kind], { strong: true });
      return rows[0] ? toAllocation(rows[0]) : null;
    };
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const existing = await mine();
      if (existing) {
        if (existing.portEnd - existing.portStart + 1 !== size) {
          throw new StoreError(`namespace ${namespace} already holds ${kind} ports ${existing.portStart}-${existing.portEnd} on node ${node}, not a block of ${size}`, 'conflict');
        }
        return existing;
      }
      const taken = (await this.db.query(
        ['SELECT port_start, port_end FROM webrtc_port_allocations WHERE node = ? AND port_end >= ? AND port_start <= ?', node, rangeMin, rangeMax],
        { strong: true },
      )).map((r) => ({ portStart: r.port_start as number, portEnd: r.port_end as number }));
      const start = firstFreeBlock(taken, size, rangeMin, rangeMax);
      if (start === null) {
        throw new StoreError(`no free block of ${size} ${kind} ports in ${rangeMin}-${rangeMax} on node ${node}`, 'ports_exhausted');
      }
      const end = start + size - 1;
      try {
        // Conditional on no overlapping block at the moment of the write, and UNIQUE-guarded:
        // a racer that read the same free block gets 0 rows (or a constraint error) and retries.
        const [n] = await this.db.execute([[
          `INSERT INTO webrtc_port_allocations (node, namespace, kind, port_start, port_end, created_at)
           SELECT ?, ?, ?, ?, ?, ?
           WHERE NOT EXISTS (SELECT 1 FROM webrtc_port_allocations WHERE node = ? AND port_start <= ? AND port_end >= ?)`,
          node, namespace, kind, start, end, now(), node, end, start,
        ]]);
        if (n === 1) return { node, namespace, kind, portStart: start, portEnd: end, createdAt: now() };
      } catch (e) {
        if (!(e instanceof ConstraintError)) throw e;
      }
    }
    throw new StoreError(`allocating ${kind} ports on node ${node} for ${namespace}: still contended after ${MAX_ATTEMPTS} attempts`, 'conflict');
  }

  async releasePorts(namespace: string, node?: string): Promise<number> {
    const [n] = await this.db.execute([node === undefined
      ? ['DELETE FROM webrtc_port_allocations WHERE namespace = ?', namespace]
      : ['DELETE FROM webrtc_port_allocations WHERE namespace = ? AND node = ?', namespace, node]]);
    return n;
  }

  async listAllocations(filter: { namespace?: string; node?: string; kind?: PortKind } = {}): Promise<PortAllocation[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    for (const [col, v] of [['namespace', filter.namespace], ['node', filter.node], ['kind', filter.kind]] as const) {
      if (v !== undefined) { where.push(`${col} = ?`); params.push(v); }
    }
    const sql = `SELECT * FROM webrtc_port_allocations ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY node, port_start`;
    return (await this.db.query([sql, ...params], { strong: true })).map(toAllocation);
  }

  // ---- webrtc_rooms ----
  async getRoom(namespace: string, roomId: string): Promise<Room | null> {
    const rows = await this.db.query(['SELECT * FROM webrtc_rooms WHERE namespace = ? AND room_id = ?', namespace, roomId], { strong: true });
    return rows[0] ? toRoom(rows[0]) : null;
  }

  async listRooms(namespace: string): Promise<Room[]> {
    return (await this.db.query(['SELECT * FROM webrtc_rooms WHERE namespace = ? ORDER BY room_id', namespace])).map(toRoom);
  }

  async createRoom(room: Omit<Room, 'createdAt'>): Promise<{ room: Room; created: boolean }> {
    checkNamespace(room.namespace);
    checkText(room.roomId, 'roomId', 64);
    checkText(room.sfuNode, 'sfuNode', 253);
    checkText(room.owner, 'owner', 255);
    const [n] = await this.db.execute([[
      `INSERT INTO webrtc_rooms (namespace, room_id, sfu_node, owner, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (namespace, room_id) DO NOTHING`,
      room.namespace, room.roomId, room.sfuNode, room.owner, now(),
    ]]);
    const stored = await this.getRoom(room.namespace, room.roomId);
    if (!stored) throw new StoreError(`room ${room.namespace}/${room.roomId} vanished right after its insert`, 'conflict');
    return { room: stored, created: n === 1 };
  }

  async deleteRoom(namespace: string, roomId: string): Promise<boolean> {
    const [n] = await this.db.execute([['DELETE FROM webrtc_rooms WHERE namespace = ? AND room_id = ?', namespace, roomId]]);
    return n > 0;
  }

  async roomCountsByNode(namespace: string): Promise<Map<string, number>> {
    const rows = await this.db.query(['SELECT sfu_node, COUNT(*) AS n FROM webrtc_rooms WHERE namespace = ? GROUP BY sfu_node', namespace], { strong: true });
    return new Map(rows.map((r) => [r.sfu_node as string, Number(r.n)]));
  }

  async assignRoom(namespace: string, roomId: string, owner: string,
    pickNode: (current: string | null) => string | Promise<string>): Promise<Room> {
    checkNamespace(namespace);
    checkText(roomId, 'roomId', 64);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const room = await this.getRoom(namespace, roomId);
      const want = await pickNode(room?.sfuNode ?? null);
      checkText(want, 'sfuNode', 253);
      if (room && room.sfuNode === want) return room;
      if (!room) {
        const { room: stored, created } = await this.createRoom({ namespace, roomId, sfuNode: want, owner });
        if (created) return stored;
        continue; // another gateway created it first: judge its node instead
      }
      const [n] = await this.db.execute([[
        'UPDATE webrtc_rooms SET sfu_node = ? WHERE namespace = ? AND room_id = ? AND sfu_node = ?',
        want, namespace, roomId, room.sfuNode,
      ]]);
      if (n === 1) return { ...room, sfuNode: want };
    }
    throw new StoreError(`room ${namespace}/${roomId}: assignment still contended after ${MAX_ATTEMPTS} attempts`, 'conflict');
  }

  // ---- webrtc_dns_records ----
  async setDnsRecords(namespace: string, records: Omit<DnsRecord, 'namespace'>[]): Promise<void> {
    checkNamespace(namespace);
    records.forEach((r, i) => {
      checkText(r.name, `records[${i}].name`, 253);
      if (!['A', 'AAAA', 'CNAME', 'TXT'].includes(r.type)) invalid(`records[${i}].type`, `must be A, AAAA, CNAME or TXT, got ${JSON.stringify(r.type)}`);
      checkText(r.value, `records[${i}].value`, 1024);
      checkInt(r.ttl, `records[${i}].ttl`, 1, 604800);
    });
    await this.db.execute([
      ['DELETE FROM webrtc_dns_records WHERE namespace = ?', namespace],
      ...records.map((r): Statement => ['INSERT INTO webrtc_dns_records (namespace, name, type, value, ttl) VALUES (?, ?, ?, ?, ?)', namespace, r.name, r.type, r.value, r.ttl]),
    ]);
  }

  async listDnsRecords(namespace: string): Promise<DnsRecord[]> {
    const rows = await this.db.query(['SELECT * FROM webrtc_dns_records WHERE namespace = ? ORDER BY name, type, value', namespace], { strong: true });
    return rows.map((r) => ({ namespace: r.namespace as string, name: r.name as string, type: r.type as DnsRecord['type'], value: r.value as string, ttl: r.ttl as number }));
  }

  async deleteDnsRecords(namespace: string): Promise<number> {
    const [n] = await this.db.execute([['DELETE FROM webrtc_dns_records WHERE namespace = ?', namespace]]);
    return n;
  }

  // ---- api_keys ----
  async createApiKey(input: { namespace: string; subject: string; owner: boolean }): Promise<{ key: Secret; info: ApiKeyInfo }> {
    checkNamespace(input.namespace);
    checkText(input.subject, 'subject', 255);
    const id = randomBytes(6).toString('hex');
    const key = `oak_${id}_${randomBytes(32).toString('base64url')}`;
    const t = now();
    await this.db.execute([[
      'INSERT INTO api_keys (id, namespace, subject, owner, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      id, input.namespace, input.subject, input.owner ? 1 : 0, sha256(key), t,
    ]]);
    return { key: new Secret(key), info: { id, namespace: input.namespace, subject: input.subject, owner: input.owner, createdAt: t, revokedAt: null } };
  }

  async verifyApiKey(key: string): Promise<ApiKeyInfo | null> {
    const m = typeof key === 'string' ? API_KEY_RE.exec(key) : null;
    if (!m) return null;
    const rows = await this.db.query(['SELECT * FROM api_keys WHERE id = ?', m[1]]);
    const row = rows[0];
    if (!row || row.revoked_at !== null) return null;
    const want = Buffer.from(row.hash as string, 'hex');
    const got = Buffer.from(sha256(key), 'hex');
    return want.length === got.length && timingSafeEqual(want, got) ? toApiKey(row) : null;
  }

  async revokeApiKey(namespace: string, id: string): Promise<boolean> {
    const [n] = await this.db.execute([['UPDATE api_keys SET revoked_at = ? WHERE namespace = ? AND id = ? AND revoked_at IS NULL', now(), namespace, id]]);
    return n === 1;
  }

  async listApiKeys(namespace: string): Promise<ApiKeyInfo[]> {
    return (await this.db.query(['SELECT * FROM api_keys WHERE namespace = ? ORDER BY created_at, id', namespace])).map(toApiKey);
  }

  async exportApiKeys(namespace: string): Promise<ApiKeyRecord[]> {
    const rows = await this.db.query(['SELECT * FROM api_keys WHERE namespace = ? ORDER BY created_at, id', namespace], { strong: true });
    return rows.map((r) => ({ ...toApiKey(r), hash: r.hash as string }));
  }

  async importApiKeys(records: ApiKeyRecord[]): Promise<number> {
    if (records.length === 0) return 0;
    for (const r of records) {
      checkNamespace(r.namespace);
      checkText(r.subject, 'subject', 255);
      if (!/^[0-9a-f]{12}$/.test(r.id)) throw new StoreError(`api key id must be 12 hex digits, got ${JSON.stringify(r.id)}`, 'invalid');
      if (!/^[0-9a-f]{64}$/.test(r.hash)) throw new StoreError(`api key ${r.id}: hash must be 64 hex digits`, 'invalid');
    }
    const changed = await this.db.execute(records.map((r) => [
      `INSERT INTO api_keys (id, namespace, subject, owner, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET revoked_at = excluded.revoked_at
       WHERE api_keys.revoked_at IS NULL AND excluded.revoked_at IS NOT NULL`,
      r.id, r.namespace, r.subject, r.owner ? 1 : 0, r.hash, r.createdAt, r.revokedAt,
    ]));
    return changed.reduce((a, n) => a + n, 0);
  }

  // ---- namespace_jwt_keys ----
  async getJwtKey(namespace: string): Promise<JwtKey | null> {
    const rows = await this.db.query(['SELECT * FROM namespace_jwt_keys WHERE namespace = ?', namespace], { strong: true });
    return rows[0] ? toJwtKey(rows[0]) : null;
  }

  async putJwtKeyIfAbsent(k: Omit<JwtKey, 'createdAt'>): Promise<JwtKey> {
    checkNamespace(k.namespace);
    await this.db.execute([[
      `INSERT INTO namespace_jwt_keys (namespace, alg, kid, signing_key, public_key, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (namespace) DO NOTHING`,
      k.namespace, k.alg, k.kid, k.signingKey.reveal(), k.publicKey, now(),
    ]]);
    const stored = await this.getJwtKey(k.namespace);
    if (!stored) throw new StoreError(`jwt key of ${k.namespace} vanished right after its insert`, 'conflict');
    return stored;
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
