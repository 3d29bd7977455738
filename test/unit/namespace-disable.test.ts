// `orama namespace disable webrtc` of a namespace the operator store does not know: "nothing to
// disable", no node contacted (the inventory's hosts do not exist: any SSH attempt would fail),
// the store unchanged; --force runs the removal playbook anyway. Real CLI, real SQLite store.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { orama } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

t.test('disable of a namespace never enabled touches nothing', async (t) => {
  const d = tempDir(t, 'orama-disable-');
  const inv = join(d, 'inventory.yml');
  // Hosts on 127.0.0.2 ports (not 127.0.0.1, which is the local connection) where nothing listens: any SSH attempt would be refused (and named).
  writeFileSync(inv, `all:\n  hosts:\n${[1, 2, 3].map((i) => `    node${i}: { address: 127.0.0.2, port: ${i}, public_ip: 127.0.0.2, wg_ip: 10.0.0.${i} }`).join('\n')}\n  children:\n    cluster:\n      hosts: { node1: {}, node2: {}, node3: {} }\n`);
  const state = join(d, 'state.db');
  const env = { ORAMA_INVENTORY: inv, ORAMA_STATE: state };
  const r = await orama(['namespace', 'disable', 'webrtc', '--namespace', 'nosuchns'], env);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /nothing to disable: namespace "nosuchns" has no WebRTC in the operator store of environment "local" \(.*state\.db\); no node was touched/);
  t.notMatch(r.out, /TASK|127\.0\.0\.2|WebRTC disabled/, 'no playbook, no host');
  const db = new Database(state, { readonly: true });
  t.teardown(() => db.close());
  t.equal((db.prepare('SELECT count(*) AS n FROM webrtc_port_allocations').get() as { n: number }).n, 0, 'the store holds nothing new');
  const p = await orama(['namespace', 'disable', 'webrtc', '--namespace', 'nosuchns', '--plan'], env);
  t.equal(p.code, 0, '--plan: exit 0, no changes');
  const bad = await orama(['namespace', 'disable', 'webrtc', '--namespace', 'No_Such'], env);
  t.equal(bad.code, 1, 'a malformed name is still an error');
  t.match(bad.out, /--namespace "No_Such": must match/);
  const forced = await orama(['namespace', 'disable', 'webrtc', '--namespace', 'nosuchns', '--force', '--plan'], env);
  t.equal(forced.code, 1, '--force runs the removal playbook, which needs the nodes');
  t.match(forced.out, /127\.0\.0\.2:1\b/, 'and names the host it could not reach');
  const wrong = await orama(['namespace', 'enable', 'webrtc', '--namespace', 'nosuchns', '--force'], env);
  t.match(wrong.out, /--force is for disable only/);
});
