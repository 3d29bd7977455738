// One contract suite, two drivers: an SQLite file, and a REAL 3-node rqlite cluster on
// 127.0.0.1 (rqlited processes started here and stopped by PID). Fails, not skips, without rqlited.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeContract } from '../helpers/store-contract.ts';
import { RqliteCluster, requireRqlited } from '../helpers/rqlite-cluster.ts';
import { openStore } from '../../src/store/open.ts';
import { PORT_PLAN } from '../../src/store/store.ts';

t.test('sqlite driver', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'orama-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  storeContract(t, 'sqlite', () => ({ driver: 'sqlite', path: join(dir, 'state.db') }));
});

t.test('rqlite driver (3-node cluster)', async (t) => {
  requireRqlited();
  const cluster = await RqliteCluster.start(3);
  t.teardown(() => cluster.stop());
  storeContract(t, 'rqlite', () => ({ driver: 'rqlite', urls: cluster.urls }));

  t.test('rqlite: leader failure — writes succeed after re-election', async (t) => {
    const store = await openStore({ driver: 'rqlite', urls: cluster.urls, retry_for_ms: 30_000 });
    t.teardown(() => store.close());
    const m = PORT_PLAN.sfu_media;
    const before = await store.allocatePorts('fail-1', 'lf-a', 'sfu_media', m.size, m.rangeMin, m.rangeMax);
    const leader = await cluster.leader();
    t.comment(`killing leader ${leader.id} (pid ${leader.proc?.pid})`);
    await cluster.kill(leader);
    const t0 = Date.now();
    const after = await store.allocatePorts('fail-1', 'lf-b', 'sfu_media', m.size, m.rangeMin, m.rangeMax);
    t.comment(`first write after the kill took ${Date.now() - t0} ms`);
    t.equal(after.portStart, before.portEnd + 1, 'allocation continues from the replicated state');
    const newLeader = await cluster.leader();
    t.not(newLeader.id, leader.id, 'a new leader was elected');
    t.match(await store.assignRoom('lf-a', 'room-after-failover', 'alice', () => 'n2'), { sfuNode: 'n2' });
    t.same((await store.listAllocations({ node: 'fail-1' })).map((a) => a.namespace), ['lf-a', 'lf-b'], 'nothing lost');
    // a store that only knows the dead node's URL fails with the URL, not silently
    const dead = await openStore({ driver: 'rqlite', urls: [leader.httpUrl], retry_for_ms: 500 }, { migrate: false });
    await t.rejects(dead.listAllocations(), { code: 'unavailable', message: new RegExp(`rqlite unavailable .*${leader.httpUrl.replace(/[.]/g, '\\.')}`) });
    await dead.close();
  });
});
