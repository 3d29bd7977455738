// Pending handler notifications are kept per play, so two runs on one host (two namespaces
// enabled at once) neither overwrite nor run each other's: a failed run's restart belongs to
// its own play. Real local runs, one after the other and at the same time.
import t from 'tap';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pendingFile } from '../../src/provision/handlers.ts';
import { provision } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

t.test('one pending file per play', async (t) => {
  t.not(pendingFile({ name: 'webrtc for namespace a', dir: '/p' }), pendingFile({ name: 'webrtc for namespace b', dir: '/p' }), 'the namespace (in the rendered play name) tells them apart');
  t.equal(pendingFile({ name: 'x', dir: '/p' }), pendingFile({ name: 'x', dir: '/p' }), 'stable');
  t.match(pendingFile({ name: 'webrtc for namespace a', dir: '/p' }), /^\/var\/lib\/orama-provision\/pending\/webrtc-for-namespace-a-[0-9a-f]{12}\.json$/);
});

t.test("a failed play's notification survives, and another play's run neither runs nor loses it", async (t) => {
  const d = tempDir(t, 'pending-');
  writeFileSync(join(d, 'inv.yml'), 'all:\n  hosts:\n    localhost: { connection: local }\n');
  const play = (ns: string, fail: boolean) => `- name: app of ${ns}
  hosts: all
  gather_facts: false
  tasks:
    - copy: { dest: ${d}/${ns}.conf, content: "v{{ version }}\\n" }
      notify: restart ${ns}
    - command: { cmd: "${fail ? 'false' : 'true'}" }
  handlers:
    - name: restart ${ns}
      command: { cmd: "sh -c 'echo ran >> ${d}/${ns}.restarts'" }
`;
  writeFileSync(join(d, 'a-fails.yml'), play('pa', true));
  writeFileSync(join(d, 'a.yml'), play('pa', false));
  writeFileSync(join(d, 'b.yml'), play('pb', false));
  const run = (pb: string, v: number) => provision(['apply', join(d, pb), '-i', join(d, 'inv.yml'), '-e', `version=${v}`]);
  const files = ['pa', 'pb'].map((ns) => pendingFile({ name: `app of ${ns}`, dir: d }));
  const mine = () => files.filter(existsSync).map((f) => JSON.parse(readFileSync(f, 'utf8')));
  t.teardown(() => files.forEach((f) => rmSync(f, { force: true })));

  t.equal((await run('a-fails.yml', 1)).code, 1, 'play a fails after its config changed');
  t.notOk(existsSync(join(d, 'pa.restarts')), 'its handler did not run');
  t.same(mine(), [['restart pa']], "a's notification is kept, in a's file");
  t.ok(existsSync(files[0]), 'the file is play a\'s');

  // b at the same time as a's retry: each runs its own handler once, none runs the other's.
  const [b, a] = await Promise.all([run('b.yml', 1), run('a.yml', 1)]);
  t.equal(b.code, 0, b.out.slice(-1500));
  t.equal(a.code, 0, a.out.slice(-1500));
  t.equal(readFileSync(join(d, 'pa.restarts'), 'utf8'), 'ran\n', "a's restart ran once, on a's run (nothing changed: it was the pending one)");
  t.equal(readFileSync(join(d, 'pb.restarts'), 'utf8'), 'ran\n', "b's restart ran once");
  t.notMatch(b.out, /restart pa/, "b's run never mentions a's handler");
  t.same(mine(), [], 'nothing pending afterwards (the files are gone)');
});

t.test('a pending handler whose condition no longer holds is dropped, not run (the unit it restarts is gone)', async (t) => {
  const d = tempDir(t, 'pending-when-');
  writeFileSync(join(d, 'inv.yml'), 'all:\n  hosts:\n    localhost: { connection: local }\n');
  const play = (fail: boolean) => `- name: app of pw
  hosts: all
  gather_facts: false
  tasks:
    - copy: { dest: ${d}/pw.conf, content: "v{{ version }}\\n" }
      notify: restart pw
      when: running
    - command: { cmd: "${fail ? 'false' : 'true'}" }
  handlers:
    - name: restart pw
      command: { cmd: "sh -c 'echo ran >> ${d}/pw.restarts'" }
      when: running
`;
  writeFileSync(join(d, 'fails.yml'), play(true));
  writeFileSync(join(d, 'ok.yml'), play(false));
  const file = pendingFile({ name: 'app of pw', dir: d });
  t.teardown(() => rmSync(file, { force: true }));
  const run = (pb: string, running: boolean) => provision(['apply', join(d, pb), '-i', join(d, 'inv.yml'), '-e', 'version=1', '-e', `running=${running}`]);
  t.equal((await run('fails.yml', true)).code, 1, 'a run fails after notifying');
  t.same(JSON.parse(readFileSync(file, 'utf8')), ['restart pw'], 'the restart is pending');
  const next = await run('ok.yml', false);
  t.equal(next.code, 0, 'the next run (the service is no longer here) succeeds');
  t.notOk(existsSync(join(d, 'pw.restarts')), 'the pending restart was not run');
  t.notOk(existsSync(file) && JSON.parse(readFileSync(file, 'utf8')).length, 'and is no longer pending');
});
