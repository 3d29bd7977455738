// The one SQL schema both drivers run, as numbered migrations. A migration is applied in one
// transaction together with its schema_migrations row, so two processes migrating at once
// cannot both apply it (the loser's transaction fails on the version's primary key and rolls
// back). Statements are idempotent (IF NOT EXISTS) so a half-known state is harmless.
// Never edit a released migration: append a new one.

export interface Migration {
  version: number;
  description: string;
  statements: string[];
}

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_at INTEGER NOT NULL
)`;

const NAME = `GLOB '[a-z0-9]*' AND length(namespace) BETWEEN 1 AND 63`;

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'webrtc config, rooms, port allocations, dns records, api keys, jwt keys',
    statements: [
      `CREATE TABLE IF NOT EXISTS namespace_webrtc_config (
        namespace TEXT PRIMARY KEY CHECK (namespace ${NAME}),
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        turn_secret TEXT NOT NULL CHECK (length(turn_secret) >= 16),
        sfu_node_count INTEGER NOT NULL DEFAULT 3 CHECK (sfu_node_count >= 1),
        turn_node_count INTEGER NOT NULL DEFAULT 2 CHECK (turn_node_count >= 1),
        turn_ttl INTEGER NOT NULL DEFAULT 600 CHECK (turn_ttl > 0),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      )`,
      `CREATE TABLE IF NOT EXISTS webrtc_rooms (
        namespace TEXT NOT NULL,
        room_id TEXT NOT NULL,
        sfu_node TEXT NOT NULL,
        owner TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, room_id)
      )`,
      `CREATE INDEX IF NOT EXISTS webrtc_rooms_by_node ON webrtc_rooms (namespace, sfu_node)`,
      // UNIQUE (node, port_start) makes two racing inserts of one block impossible; the
      // allocator's insert is also conditional on no overlapping block (any kind: a port of a node
      // belongs to at most one allocation). UNIQUE (node, namespace, kind): one block per kind.
      `CREATE TABLE IF NOT EXISTS webrtc_port_allocations (
        node TEXT NOT NULL,
        namespace TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('sfu_signal', 'sfu_media', 'turn_listen', 'turn_relay')),
        port_start INTEGER NOT NULL,
        port_end INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        CHECK (port_start >= 1 AND port_end <= 65535 AND port_end >= port_start),
        UNIQUE (node, port_start),
        UNIQUE (node, namespace, kind)
      )`,
      `CREATE INDEX IF NOT EXISTS webrtc_port_allocations_by_namespace ON webrtc_port_allocations (namespace)`,
      `CREATE TABLE IF NOT EXISTS webrtc_dns_records (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('A', 'AAAA', 'CNAME', 'TXT')),
        value TEXT NOT NULL,
        ttl INTEGER NOT NULL DEFAULT 300,
        PRIMARY KEY (namespace, name, type, value)
      )`,
      // hash = hex SHA-256 of the whole key. Keys carry 256 random bits, so a fast hash is the
      // right one (a slow KDF protects low-entropy passwords, not random keys).
      `CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        subject TEXT NOT NULL,
        owner INTEGER NOT NULL CHECK (owner IN (0, 1)),
        hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
      )`,
      `CREATE INDEX IF NOT EXISTS api_keys_by_namespace ON api_keys (namespace)`,
      `CREATE TABLE IF NOT EXISTS namespace_jwt_keys (
        namespace TEXT PRIMARY KEY,
        alg TEXT NOT NULL CHECK (alg IN ('HS256', 'ES256', 'EdDSA')),
        kid TEXT NOT NULL,
        signing_key TEXT NOT NULL,
        public_key TEXT,
        created_at INTEGER NOT NULL
      )`,
    ],
  },
  {
    version: 2,
    description: 'the SFU engine of each namespace',
    // ADD COLUMN cannot say IF NOT EXISTS: a second process that applies this migration at the
    // same moment fails on it, and migrate() counts that as lost to the process that won.
    // No CHECK on the names: an engine added later needs no migration (the CLI checks the names).
    statements: [
      `ALTER TABLE namespace_webrtc_config ADD COLUMN sfu_engine TEXT`,
      // Every namespace enabled before runs werift, the only engine there was: recorded so, a
      // default or inventory var introduced later never switches it silently.
      `UPDATE namespace_webrtc_config SET sfu_engine = 'werift' WHERE sfu_engine IS NULL`,
    ],
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
