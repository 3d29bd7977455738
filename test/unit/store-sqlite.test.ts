// The embedded SQLite driver and the pure parts of the store (block search, state argument).
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import Database from 'better-sqlite3';
import { firstFreeBlock } from '../../src/store/sql-store.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { stateFromArg, openStore } from '../../src/store/open.ts';
import { Secret } from '../../src/secret/secret.ts';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, MIGRATIONS_TABLE } from '../../src/store/schema.ts';

const dir = mkdtempSync(join(tmpdir(), 'orama-store-unit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('firstFreeBlock: first fit among taken blocks', async (t) => {
  t.equal(firstFreeBlock([], 500, 20000, 29999), 20000);
  t.equal(firstFreeBlock([{ portStart: 20000, portEnd: 20499 }], 500, 20000, 29999), 20500);
  t.equal(firstFreeBlock([{ portStart: 20500, portEnd: 20999 }], 500, 20000, 29999), 20000, 'hole at the start');
  t.equal(firstFreeBlock([{ portStart: 20000, portEnd: 20499 }, { portStart: 20700, portEnd: 20999 }], 500, 20000, 29999), 21000, 'hole too small is skipped');
  t.equal(firstFreeBlock([{ portStart: 20000, portEnd: 20499 }, { portStart: 20700, portEnd: 20999 }], 200, 20000, 29999), 20500, 'hole big enough is used');
  t.equal(firstFreeBlock([{ portStart: 20000, portEnd: 29999 }], 1, 20000, 29999), null);
  t.equal(firstFreeBlock([{ portStart: 20100, portEnd: 20100 }], 1, 20100, 20100), null);
  t.equal(firstFreeBlock([{ portStart: 19000, portEnd: 20009 }], 10, 20000, 20100), 20010, 'a block straddling rangeMin counts');
  t.equal(firstFreeBlock([{ portStart: 20300, portEnd: 20400 }, { portStart: 20000, portEnd: 20299 }], 100, 20000, 20500), 20401, 'unsorted input');
});

t.test('stateFromArg: path → sqlite, URL list → rqlite, default path', async (t) => {
  t.same(stateFromArg('/tmp/x.db'), { driver: 'sqlite', path: '/tmp/x.db' });
  t.same(stateFromArg('http://127.0.0.1:4001,http://127.0.0.1:4003'), { driver: 'rqlite', urls: ['http://127.0.0.1:4001', 'http://127.0.0.1:4003'] });
  const saved = process.env.ORAMA_STATE;
  delete process.env.ORAMA_STATE;
  t.same(stateFromArg(undefined), { driver: 'sqlite', path: '/var/lib/orama/state.db' });
  process.env.ORAMA_STATE = join(dir, 'env.db');
  t.same(stateFromArg(undefined), { driver: 'sqlite', path: join(dir, 'env.db') });
  process.env.ORAMA_STATE = '';
  t.throws(() => stateFromArg(undefined), { message: 'ORAMA_STATE "": empty; the operator store is a SQLite file path or http(s):// rqlite URL(s)' }, 'an empty ORAMA_STATE is named');
  if (saved === undefined) delete process.env.ORAMA_STATE; else process.env.ORAMA_STATE = saved;
  // What would open a SQLite database no one looks at is refused, naming --state and the value.
  t.throws(() => stateFromArg(''), { message: /^--state "": empty; / });
  t.throws(() => stateFromArg('  '), { message: /^--state "  ": empty; / });
  t.throws(() => stateFromArg(':memory:'), { message: /^--state ":memory:": SQLite's in-memory database is gone when the command ends/ });
  t.throws(() => stateFromArg('ftp://x'), { message: /^--state "ftp:\/\/x": ftp: is no store's URL scheme/ });
  t.throws(() => stateFromArg('file:state.db'), { message: /^--state "file:state\.db": file: is no store's URL scheme/ });
  t.same(stateFromArg('./a:b.db'), { driver: 'sqlite', path: './a:b.db' }, 'a path with a colon is still a path');
  t.same(stateFromArg('https://n1:4001'), { driver: 'rqlite', urls: ['https://n1:4001'] });
});

t.test('opening creates the directory, WAL mode, the schema', async (t) => {
  const path = join(dir, 'nested', 'deeper', 'state.db');
  const store = await openSqliteStore(path);
  t.ok(existsSync(path));
  t.equal(await store.schemaVersion(), LATEST_SCHEMA_VERSION);
  await store.close();
  const raw = new Database(path, { readonly: true });
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => (r as { name: string }).name);
  t.same(tables, ['api_keys', 'namespace_jwt_keys', 'namespace_webrtc_config', 'schema_migrations', 'webrtc_dns_records', 'webrtc_port_allocations', 'webrtc_rooms']);
  const ver = raw.prepare('SELECT version, description FROM schema_migrations').all();
  t.same(ver, MIGRATIONS.map((m) => ({ version: m.version, description: m.description })));
  raw.close();
});

t.test('the UNIQUE constraints themselves refuse a duplicate block (not just the allocator)', async (t) => {
  const path = join(dir, 'unique.db');
  (await openSqliteStore(path)).close();
  const raw = new Database(path);
  const ins = raw.prepare('INSERT INTO webrtc_port_allocations (node, namespace, kind, port_start, port_end, created_at) VALUES (?, ?, ?, ?, ?, 0)');
  ins.run('n1', 'a', 'sfu_media', 20000, 20499);
  t.throws(() => ins.run('n1', 'b', 'sfu_media', 20000, 20499), /UNIQUE constraint failed: webrtc_port_allocations.node, webrtc_port_allocations.port_start/);
  t.throws(() => ins.run('n1', 'a', 'sfu_media', 21000, 21499), /UNIQUE constraint failed: webrtc_port_allocations.node, webrtc_port_allocations.namespace, webrtc_port_allocations.kind/);
  t.throws(() => ins.run('n1', 'c', 'other', 1, 1), /CHECK constraint failed/);
  t.throws(() => ins.run('n1', 'c', 'sfu_media', 10, 5), /CHECK constraint failed/);
  raw.close();
});

t.test('two store handles on one file see each other (CLI and gateway share state)', async (t) => {
  const path = join(dir, 'shared.db');
  const a = await openSqliteStore(path);
  const b = await openSqliteStore(path);
  await a.createRoom({ namespace: 'ns', roomId: 'r', sfuNode: 'n1', owner: 'o' });
  t.match(await b.getRoom('ns', 'r'), { sfuNode: 'n1' });
  const { key } = await b.createApiKey({ namespace: 'ns', subject: 's', owner: false });
  t.match(await a.verifyApiKey(key.reveal()), { subject: 's', owner: false });
  await a.close();
  await b.close();
});

t.test('errors name the file; secrets print as (sensitive)', async (t) => {
  const notDir = join(dir, 'a-file');
  writeFileSync(notDir, 'x');
  await t.rejects(openStore({ driver: 'sqlite', path: join(notDir, 'state.db') }), { message: new RegExp(notDir.replace(/[.]/g, '\\.')) });
  await t.rejects(openStore({ driver: 'nope' } as never), { message: /store\.driver/ });
  await t.rejects(openStore({ driver: 'rqlite', urls: ['ftp://x'] }), { message: /store\.urls: ftp:\/\/x must be http/ });
  const s = new Secret('hunter2-hunter2-hunter2');
  t.equal(`${s}`, '(sensitive)');
  t.equal(JSON.stringify({ s }), '{"s":"(sensitive)"}');
  t.equal(inspect({ s }), '{ s: (sensitive) }');
  t.equal(s.reveal(), 'hunter2-hunter2-hunter2');
});

t.test('migration 2 on a store made before it: every namespace it knew is recorded as werift; two processes migrating at once both succeed', async (t) => {
  const path = join(dir, 'v1.db');
  const raw = new Database(path);
  raw.exec(MIGRATIONS_TABLE);
  for (const stmt of MIGRATIONS[0].statements) raw.exec(stmt);
  raw.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (1, ?, 0)').run(MIGRATIONS[0].description);
  raw.prepare("INSERT INTO namespace_webrtc_config (namespace, enabled, turn_secret, sfu_node_count, turn_node_count, turn_ttl, created_at, updated_at) VALUES ('old', 1, 'old-turn-secret-0123456789abcdef', 3, 2, 600, 0, 0)").run();
  raw.close();
  // Two handles migrating concurrently interleave at every await: both read version 1, one adds
  // the column, the other's ADD COLUMN fails — which is the race lost, not an error.
  const [a, b] = await Promise.all([openSqliteStore(path, { migrate: false }), openSqliteStore(path, { migrate: false })]);
  const applied = await Promise.all([a.migrate(), b.migrate()]);
  t.same(applied.sort(), [0, 1], 'applied once, by one of them; the other neither failed nor applied it again');
  t.equal(await a.schemaVersion(), LATEST_SCHEMA_VERSION);
  t.equal((await b.getWebrtcConfig('old'))!.sfuEngine, 'werift', 'the namespace enabled before keeps werift');
  await a.close();
  await b.close();
});
