// The store's contract: one suite, run against every driver (SQLite file, rqlite cluster).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import type { StoreConfig } from '../../src/store/open.ts';
import { openStore } from '../../src/store/open.ts';
import { Secret } from '../../src/secret/secret.ts';
import { PORT_PLAN, StoreError, type PortAllocation, type Store } from '../../src/store/store.ts';
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema.ts';

const WORKER = fileURLToPath(new URL('./allocate-worker.ts', import.meta.url));

interface WorkerResult { ok: boolean; alloc?: PortAllocation; code?: string; message?: string; t0: number; t1: number }

/** True when at least two racers were inside allocatePorts at the same time (a real race). */
export function overlapped(results: WorkerResult[]): boolean {
  return results.some((a, i) => results.some((b, j) => i !== j && a.t0 < b.t1 && b.t0 < a.t1));
}

/**
 * Races the jobs (on a fresh node each attempt) until at least two racers really were inside
 * allocatePorts at once: a fast driver (SQLite: about a millisecond a call) can otherwise run
 * them one after another and prove nothing. Bounded: 8 attempts; the caller asserts `overlapped`.
 */
export async function raceUntilOverlap(config: StoreConfig, jobs: (node: string) => Parameters<typeof raceAllocators>[1], base: string): Promise<{ results: WorkerResult[]; node: string; attempts: number }> {
  let last: { results: WorkerResult[]; node: string; attempts: number } | undefined;
  for (let attempt = 1; attempt <= 8; attempt++) {
    const node = `${base}-${attempt}`;
    last = { results: await raceAllocators(config, jobs(node)), node, attempts: attempt };
    if (overlapped(last.results)) return last;
  }
  return last!;
}

/** Starts `jobs` allocator processes that fire at the same instant; resolves with their results. */
export async function raceAllocators(config: StoreConfig, jobs: { node: string; namespace: string; kind: string; size: number; min: number; max: number }[]): Promise<WorkerResult[]> {
  const startAt = Date.now() + 2500 + jobs.length * 150; // every process loaded before the go
  return Promise.all(jobs.map((j) => new Promise<WorkerResult>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(config), String(startAt), j.node, j.namespace, j.kind, String(j.size), String(j.min), String(j.max)],
      { timeout: 60_000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`allocator worker failed: ${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as WorkerResult);
      });
  })));
}

const overlaps = (a: PortAllocation, b: PortAllocation) => a.node === b.node && a.portStart <= b.portEnd && b.portStart <= a.portEnd;

export function storeContract(t: Test, name: string, config: () => StoreConfig): void {
  let store: Store;
  t.before(async () => { store = await openStore(config()); });
  t.teardown(async () => { await store?.close(); });

  t.test(`${name}: migrations are applied once and are idempotent`, async (t) => {
    t.equal(await store.schemaVersion(), LATEST_SCHEMA_VERSION);
    t.equal(await store.migrate(), 0, 'second migrate applies nothing');
    const again = await openStore(config());
    t.equal(await again.migrate(), 0);
    await again.close();
  });

  t.test(`${name}: namespace_webrtc_config round trip, secret never printed`, async (t) => {
    t.equal(await store.getWebrtcConfig('cfg-a'), null);
    const secret = 'cfg-a-turn-secret-0123456789abcdef';
    const c = await store.putWebrtcConfig({ namespace: 'cfg-a', enabled: true, turnSecret: new Secret(secret), sfuNodeCount: 3, turnNodeCount: 2, turnTtl: 600 });
    t.equal(c.turnSecret.reveal(), secret);
    t.match(c, { namespace: 'cfg-a', enabled: true, sfuNodeCount: 3, turnNodeCount: 2, turnTtl: 600 });
    t.notOk(JSON.stringify(c).includes(secret), 'JSON form redacts the secret');
    t.notOk(inspect(c, { depth: 5 }).includes(secret), 'inspect form redacts the secret');
    const upd = await store.putWebrtcConfig({ ...c, enabled: false, turnTtl: 300 });
    t.equal(upd.enabled, false);
    t.equal(upd.turnTtl, 300);
    t.equal(upd.createdAt, c.createdAt, 'update keeps created_at');
    t.ok((await store.listWebrtcConfigs()).some((x) => x.namespace === 'cfg-a'));
    await store.createRoom({ namespace: 'cfg-a', roomId: 'r1', sfuNode: 'n1', owner: 'alice' });
    t.equal(await store.deleteWebrtcConfig('cfg-a'), true);
    t.equal(await store.getWebrtcConfig('cfg-a'), null);
    t.same(await store.listRooms('cfg-a'), [], 'disable removes the namespace rooms too');
    t.equal(await store.deleteWebrtcConfig('cfg-a'), false);
    await t.rejects(store.putWebrtcConfig({ ...c, namespace: 'Bad NS' }), { code: 'invalid', message: /namespace/ });
    await t.rejects(store.putWebrtcConfig({ ...c, turnSecret: new Secret('short') }), { code: 'invalid', message: /turnSecret/ });
  });

  t.test(`${name}: a namespace's SFU engine is kept until a new one is given`, async (t) => {
    const base = { namespace: 'cfg-e', enabled: false, turnSecret: new Secret('cfg-e-turn-secret-0123456789abcdef'), sfuNodeCount: 3, turnNodeCount: 2, turnTtl: 600 };
    t.equal((await store.putWebrtcConfig(base)).sfuEngine, null, 'none recorded');
    t.equal((await store.putWebrtcConfig({ ...base, sfuEngine: 'werift' })).sfuEngine, 'werift');
    t.equal((await store.putWebrtcConfig({ ...base, enabled: true })).sfuEngine, 'werift', 'a put without one keeps it (the seed writes no engine)');
    t.equal((await store.putWebrtcConfig({ ...base, sfuEngine: null })).sfuEngine, 'werift', 'null keeps it too');
    t.equal((await store.putWebrtcConfig({ ...base, sfuEngine: 'mediasoup' })).sfuEngine, 'mediasoup', 'a new one replaces it');
    t.equal((await store.getWebrtcConfig('cfg-e'))!.sfuEngine, 'mediasoup');
    await t.rejects(store.putWebrtcConfig({ ...base, sfuEngine: 'Bad Engine' }), { code: 'invalid', message: /sfuEngine: must be an engine name, got "Bad Engine"/ });
    t.equal(await store.deleteWebrtcConfig('cfg-e'), true);
  });

  t.test(`${name}: port allocation follows the seed's plan and is idempotent`, async (t) => {
    const m = PORT_PLAN.sfu_media;
    const a = await store.allocatePorts('node-1', 'pa', 'sfu_media', m.size, m.rangeMin, m.rangeMax);
    t.match(a, { node: 'node-1', namespace: 'pa', kind: 'sfu_media', portStart: 20000, portEnd: 20499 });
    t.match(await store.allocatePorts('node-1', 'pa', 'sfu_media', m.size, m.rangeMin, m.rangeMax), { portStart: 20000 }, 'same namespace gets its block back');
    t.match(await store.allocatePorts('node-1', 'pb', 'sfu_media', m.size, m.rangeMin, m.rangeMax), { portStart: 20500, portEnd: 20999 });
    t.match(await store.allocatePorts('node-2', 'pb', 'sfu_media', m.size, m.rangeMin, m.rangeMax), { portStart: 20000 }, 'nodes are independent');
    const s = PORT_PLAN.sfu_signal;
    t.match(await store.allocatePorts('node-1', 'pa', 'sfu_signal', s.size, s.rangeMin, s.rangeMax), { portStart: 30000, portEnd: 30000 });
    const r = PORT_PLAN.turn_relay;
    t.match(await store.allocatePorts('node-1', 'pa', 'turn_relay', r.size, r.rangeMin, r.rangeMax), { portStart: 49152, portEnd: 49951 });
    // a hole is reused first
    t.equal(await store.releasePorts('pa', 'node-1'), 3);
    t.match(await store.allocatePorts('node-1', 'pc', 'sfu_media', m.size, m.rangeMin, m.rangeMax), { portStart: 20000 }, 'freed block is reused');
    t.same((await store.listAllocations({ node: 'node-1', kind: 'sfu_media' })).map((x) => [x.namespace, x.portStart]), [['pc', 20000], ['pb', 20500]]);
    t.equal((await store.listAllocations({ namespace: 'pb' })).length, 2);
    await t.rejects(store.allocatePorts('node-1', 'pb', 'sfu_media', 100, m.rangeMin, m.rangeMax), { code: 'conflict', message: /already holds sfu_media ports 20500-20999/ });
    t.equal(await store.releasePorts('pb'), 2);
    t.equal(await store.releasePorts('pc'), 1);
    t.same(await store.listAllocations({ node: 'node-1' }), []);
  });

  t.test(`${name}: exhaustion and bad input name the field`, async (t) => {
    await store.allocatePorts('node-x', 'ex1', 'turn_relay', 800, 50000, 51599);
    await store.allocatePorts('node-x', 'ex2', 'turn_relay', 800, 50000, 51599);
    await t.rejects(store.allocatePorts('node-x', 'ex3', 'turn_relay', 800, 50000, 51599), { code: 'ports_exhausted', message: 'no free block of 800 turn_relay ports in 50000-51599 on node node-x' });
    await t.rejects(store.allocatePorts('node-x', 'ex3', 'bogus' as never, 1, 1, 2), { code: 'invalid', message: /^kind:/ });
    await t.rejects(store.allocatePorts('node-x', 'ex3', 'sfu_media', 0, 20000, 20010), { code: 'invalid', message: /^size:/ });
    await t.rejects(store.allocatePorts('node-x', 'ex3', 'sfu_media', 1, 20010, 20000), { code: 'invalid', message: /^rangeMax:/ });
    await t.rejects(store.allocatePorts('node-x', 'ex3', 'sfu_media', 1, 0, 20000), { code: 'invalid', message: /^rangeMin:/ });
    await t.rejects(store.allocatePorts('', 'ex3', 'sfu_media', 1, 1, 2), { code: 'invalid', message: /^node:/ });
    await t.rejects(store.allocatePorts('node-x', 'EX3', 'sfu_media', 1, 1, 2), { code: 'invalid', message: /^namespace:/ });
    await store.releasePorts('ex1');
    await store.releasePorts('ex2');
  });

  t.test(`${name}: racing allocators for one block — exactly one wins`, async (t) => {
    const jobs = (node: string) => Array.from({ length: 6 }, (_, i) => ({ node, namespace: `race-${i}`, kind: 'sfu_media', size: 500, min: 20000, max: 20499 }));
    const { results, node, attempts } = await raceUntilOverlap(config(), jobs, 'race-1');
    t.ok(overlapped(results), `the racers were inside allocatePorts at the same time (attempt ${attempts})`);
    const won = results.filter((r) => r.ok);
    t.equal(won.length, 1, 'exactly one allocator got the block');
    t.same(results.filter((r) => !r.ok).map((r) => r.code), Array(5).fill('ports_exhausted'), 'the others are told the range is exhausted');
    const rows = await store.listAllocations({ node });
    t.equal(rows.length, 1, 'one row in the table');
    t.equal(rows[0].namespace, won[0].alloc!.namespace);
  });

  t.test(`${name}: racing allocators for a wide range — all win, no overlap`, async (t) => {
    const jobs = (node: string) => {
      const list = Array.from({ length: 8 }, (_, i) => ({ node, namespace: `wide-${i}`, kind: 'turn_relay', size: 800, min: 49152, max: 65535 }));
      // plus a second allocator for the same namespace as the first: must get the same block
      return [...list, { ...list[0] }];
    };
    const { results, node, attempts } = await raceUntilOverlap(config(), jobs, 'race-2');
    t.ok(overlapped(results), `the racers were inside allocatePorts at the same time (attempt ${attempts})`);
    t.ok(results.every((r) => r.ok), `all succeed: ${JSON.stringify(results.filter((r) => !r.ok))}`);
    const allocs = results.map((r) => r.alloc!);
    t.same(allocs[8].portStart, allocs[0].portStart, 'same namespace racing itself gets one block');
    const rows = await store.listAllocations({ node });
    t.equal(rows.length, 8);
    for (const a of rows) for (const b of rows) if (a !== b) t.notOk(overlaps(a, b), `${a.namespace} and ${b.namespace} do not overlap`);
    t.same(rows.map((r) => r.portStart), [0, 1, 2, 3, 4, 5, 6, 7].map((i) => 49152 + i * 800), 'packed first-fit');
  });

  t.test(`${name}: rooms CRUD and affinity compare-and-set`, async (t) => {
    const ns = 'rooms-a';
    const c1 = await store.createRoom({ namespace: ns, roomId: 'lobby', sfuNode: 'n1', owner: 'alice' });
    t.equal(c1.created, true);
    const c2 = await store.createRoom({ namespace: ns, roomId: 'lobby', sfuNode: 'n2', owner: 'bob' });
    t.equal(c2.created, false, 'second create does not overwrite');
    t.match(c2.room, { sfuNode: 'n1', owner: 'alice' });
    t.equal(await store.getRoom('rooms-b', 'lobby'), null, 'rooms are per namespace');
    await store.createRoom({ namespace: ns, roomId: 'b-room', sfuNode: 'n2', owner: 'alice' });
    t.same((await store.listRooms(ns)).map((r) => r.roomId), ['b-room', 'lobby']);
    t.same([...(await store.roomCountsByNode(ns))].sort(), [['n1', 1], ['n2', 1]]);

    // assign: existing room on a healthy node stays
    const seen: (string | null)[] = [];
    const kept = await store.assignRoom(ns, 'lobby', 'carol', (cur) => { seen.push(cur); return cur ?? 'n3'; });
    t.match(kept, { sfuNode: 'n1', owner: 'alice' });
    t.same(seen, ['n1']);
    // reassign away from a dead node
    const moved = await store.assignRoom(ns, 'lobby', 'carol', () => 'n3');
    t.match(moved, { sfuNode: 'n3', owner: 'alice' }, 'owner survives a move');
    t.match(await store.getRoom(ns, 'lobby'), { sfuNode: 'n3' });
    // new room is created by assign
    const fresh = await store.assignRoom(ns, 'new-room', 'carol', (cur) => { t.equal(cur, null); return 'n2'; });
    t.match(fresh, { sfuNode: 'n2', owner: 'carol' });
    // many concurrent assigners for one new room agree on one node
    const results = await Promise.all(['n1', 'n2', 'n3', 'n1', 'n2'].map((n) => store.assignRoom(ns, 'contended', 'dave', (cur) => cur ?? n)));
    t.equal(new Set(results.map((r) => r.sfuNode)).size, 1, 'all concurrent assigners see one node');
    t.equal(await store.deleteRoom(ns, 'lobby'), true);
    t.equal(await store.deleteRoom(ns, 'lobby'), false);
    t.equal(await store.getRoom(ns, 'lobby'), null);
  });

  t.test(`${name}: dns records set / list / delete`, async (t) => {
    await store.setDnsRecords('dns-a', [
      { name: 'turn.ns-dns-a.example.org', type: 'A', value: '203.0.113.11', ttl: 60 },
      { name: 'turn.ns-dns-a.example.org', type: 'A', value: '203.0.113.12', ttl: 60 },
    ]);
    t.equal((await store.listDnsRecords('dns-a')).length, 2);
    await store.setDnsRecords('dns-a', [{ name: 'turn.ns-dns-a.example.org', type: 'A', value: '203.0.113.13', ttl: 60 }]);
    t.same((await store.listDnsRecords('dns-a')).map((r) => r.value), ['203.0.113.13'], 'set replaces');
    await t.rejects(store.setDnsRecords('dns-a', [{ name: 'x', type: 'MX' as never, value: 'y', ttl: 60 }]), { code: 'invalid', message: /^records\[0\]\.type/ });
    t.same((await store.listDnsRecords('dns-a')).map((r) => r.value), ['203.0.113.13'], 'invalid set wrote nothing');
    t.equal(await store.deleteDnsRecords('dns-a'), 1);
    t.same(await store.listDnsRecords('dns-a'), []);
  });

  t.test(`${name}: api keys are stored hashed, verified, revoked`, async (t) => {
    const { key, info } = await store.createApiKey({ namespace: 'keys-a', subject: 'svc-1', owner: true });
    const plain = key.reveal();
    t.match(plain, /^oak_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    t.equal(String(key), '(sensitive)');
    t.match(await store.verifyApiKey(plain), { id: info.id, namespace: 'keys-a', subject: 'svc-1', owner: true, revokedAt: null });
    t.equal(await store.verifyApiKey(plain.slice(0, -1) + (plain.endsWith('A') ? 'B' : 'A')), null, 'tampered key');
    t.equal(await store.verifyApiKey('oak_000000000000_' + 'A'.repeat(43)), null, 'unknown id');
    t.equal(await store.verifyApiKey('garbage'), null);
    const listed = await store.listApiKeys('keys-a');
    t.equal(listed.length, 1);
    t.notOk(JSON.stringify(listed).includes(plain.split('_').pop()!), 'listing carries no key material');
    t.equal(await store.revokeApiKey('keys-b', info.id), false, 'cannot revoke through another namespace');
    t.equal(await store.revokeApiKey('keys-a', info.id), true);
    t.equal(await store.revokeApiKey('keys-a', info.id), false, 'second revoke is a no-op');
    t.equal(await store.verifyApiKey(plain), null, 'revoked key no longer verifies');
  });

  t.test(`${name}: api keys copied from another store (controller → cluster) verify here; revocations follow`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'orama-keys-src-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const src = await openStore({ driver: 'sqlite', path: join(dir, 'controller.db') });
    t.teardown(() => src.close());
    const a = await src.createApiKey({ namespace: 'keys-c', subject: 'svc-a', owner: true });
    const b = await src.createApiKey({ namespace: 'keys-c', subject: 'svc-b', owner: false });
    const records = await src.exportApiKeys('keys-c');
    t.same(records.map((r) => r.subject).sort(), ['svc-a', 'svc-b']);
    // The secret is everything after "oak_<id>_" (base64url may itself contain "_": splitting on
    // the last one could leave a 2-character tail that a hash contains by chance; CI caught it).
    const secretPart = a.key.reveal().slice(`oak_${a.info.id}_`.length);
    t.ok(secretPart.length >= 40, 'the secret part of the key');
    t.notOk(JSON.stringify(records).includes(secretPart), 'records carry the hash, not the key');
    t.equal(await store.importApiKeys(records), 2, 'both rows added');
    t.match(await store.verifyApiKey(a.key.reveal()), { id: a.info.id, subject: 'svc-a', owner: true }, 'a key created elsewhere verifies here');
    t.equal(await store.importApiKeys(records), 0, 'importing again changes nothing');
    await src.revokeApiKey('keys-c', b.info.id);
    t.equal(await store.importApiKeys(await src.exportApiKeys('keys-c')), 1, 'the revocation is carried over');
    t.equal(await store.verifyApiKey(b.key.reveal()), null, 'revoked here too');
    t.match(await store.verifyApiKey(a.key.reveal()), { subject: 'svc-a' }, 'the other key still works');
    t.equal(await store.importApiKeys(records), 0, 'an old copy (b not revoked) does not un-revoke b');
    t.equal(await store.verifyApiKey(b.key.reveal()), null);
    await t.rejects(store.importApiKeys([{ ...records[0], id: 'nothex' }]), { code: 'invalid', message: /api key id/ });
  });

  t.test(`${name}: jwt key first writer wins`, async (t) => {
    const k1 = await store.putJwtKeyIfAbsent({ namespace: 'jwt-a', alg: 'HS256', kid: 'k1', signingKey: new Secret('first-secret-0123456789'), publicKey: null });
    const k2 = await store.putJwtKeyIfAbsent({ namespace: 'jwt-a', alg: 'HS256', kid: 'k2', signingKey: new Secret('second-secret-0123456789'), publicKey: null });
    t.equal(k1.kid, 'k1');
    t.equal(k2.kid, 'k1');
    t.equal((await store.getJwtKey('jwt-a'))!.signingKey.reveal(), 'first-secret-0123456789');
    t.equal(await store.getJwtKey('jwt-b'), null);
  });

  t.test(`${name}: errors are StoreErrors`, async (t) => {
    await t.rejects(store.createRoom({ namespace: 'x', roomId: '', sfuNode: 'n', owner: 'o' }), StoreError);
  });
}
