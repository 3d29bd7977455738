// One racing allocator in its own process (so SQLite writers really contend, like rqlite
// clients do). argv: storeConfigJSON startAtMs node namespace kind size min max
// Prints one JSON line: {ok:true, alloc} or {ok:false, code, message}, with the call's window
// {t0, t1} (ms since the epoch) so the caller can prove the racers really overlapped.
import { openStore, type StoreConfig } from '../../src/store/open.ts';
import { StoreError, type PortKind } from '../../src/store/store.ts';

const [cfg, startAt, node, namespace, kind, size, min, max] = process.argv.slice(2);
const store = await openStore(JSON.parse(cfg) as StoreConfig, { migrate: false });
const wait = Number(startAt) - Date.now();
if (wait > 0) await new Promise((r) => setTimeout(r, wait));
const t0 = Date.now();
try {
  const alloc = await store.allocatePorts(node, namespace, kind as PortKind, Number(size), Number(min), Number(max));
  process.stdout.write(JSON.stringify({ ok: true, alloc, t0, t1: Date.now() }) + '\n');
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, code: e instanceof StoreError ? e.code : 'error', message: (e as Error).message, t0, t1: Date.now() }) + '\n');
} finally {
  await store.close();
}
