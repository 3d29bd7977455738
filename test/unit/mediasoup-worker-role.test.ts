// roles/sfu's mediasoup worker tasks (roles/sfu/tasks/mediasoup-worker.yml), run by the engine on
// this machine (a local host, a temp destination): the binary copied 0755, its shared libraries
// checked with ldd — a missing one fails the node's task naming the library and the node; a plan
// shows the copy and decides the check at apply time; a second apply changes nothing.
import t from 'tap';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apply, plan } from '../../src/provision/engine.ts';
import { pendingFile } from '../../src/provision/handlers.ts';
import { mediasoupWorker } from '../../src/namespace/artifacts.ts';
import { root } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const worker = await mediasoupWorker();
const dir = tempDir(t, 'ms-worker-role-');
writeFileSync(join(dir, 'inv.yml'), 'all:\n  hosts:\n    box: { connection: local }\n');
/** One playbook directory per case: a failed run leaves its notified handler pending for its own play only. */
const playbook = (name: string) => {
  mkdirSync(join(dir, name));
  const file = join(dir, name, 'play.yml');
  writeFileSync(file, `- name: worker check
  hosts: all
  gather_facts: false
  tasks:
    - import_tasks: ${join(root, 'roles/sfu/tasks/mediasoup-worker.yml')}
  handlers:
    - name: restart sfu
      debug: { msg: "sfu restarted" }
`);
  // The engine keeps pending notifications on the host, here this machine: none left behind.
  t.teardown(() => rmSync(pendingFile({ name: 'worker check', dir: join(dir, name) }), { force: true }));
  return file;
};
// The worker with one of its libraries renamed in its dynamic section (same length): what ldd
// reports on a node without libuv1.
const broken = join(dir, 'broken-worker');
const bytes = readFileSync(worker);
const at = bytes.indexOf(Buffer.from('libuv.so.1\0'));
t.ok(at > 0, 'the worker names libuv.so.1');
Buffer.from('libzz.so.1').copy(bytes, at);
writeFileSync(broken, bytes, { mode: 0o755 });

const run = async (mode: 'plan' | 'apply', src: string, name: string, play: string) => {
  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  const dest = join(dir, name);
  const r = await (mode === 'plan' ? plan : apply)({ playbook: play, inventory: join(dir, 'inv.yml'), extraVars: { artifacts: { mediasoup_worker: src }, mediasoup_worker_bin: dest }, out: sink });
  return { r, out, dest };
};

t.test('the built worker: a plan shows the copy; apply copies it 0755 and finds every library; again, nothing changes', async (t) => {
  const play = playbook('ok');
  const p = await run('plan', worker, 'ok/mediasoup-worker', play);
  t.notOk(p.r.failed, p.out);
  t.match(p.out, /\+ file .*ok\/mediasoup-worker/, 'the plan shows the file');
  t.equal(p.r.changes.length, 1, `the copy is the only change (ldd decided at apply time): ${p.r.changes.map((c) => c.change.resource).join(', ')}`);
  const a = await run('apply', worker, 'ok/mediasoup-worker', play);
  t.notOk(a.r.failed, a.out);
  t.equal(statSync(a.dest).mode & 0o777, 0o755);
  t.match(a.out, /sfu restarted/, 'a new worker restarts the SFU');
  const again = await run('apply', worker, 'ok/mediasoup-worker', play);
  t.notOk(again.r.failed, again.out);
  t.match(again.out, /changed=0/, 'the second apply changes nothing');
});

t.test('a worker whose library the node lacks: the task fails, naming the library and the node', async (t) => {
  const a = await run('apply', broken, 'bad/mediasoup-worker', playbook('bad'));
  t.ok(a.r.failed, 'the run fails');
  t.match(a.out, /box: mediasoup's worker .*bad\/mediasoup-worker cannot start, shared libraries not found on this node: libzz\.so\.1 \(ldd; the node needs the Debian packages libuv1 /);
  t.notMatch(a.out, /sfu restarted/, 'the SFU is not restarted onto it');
});

t.test('a file ldd cannot read: the task fails with what ldd said', async (t) => {
  const junk = join(dir, 'junk-file');
  writeFileSync(junk, 'not an executable\n', { mode: 0o755 });
  const a = await run('apply', junk, 'junk/mediasoup-worker', playbook('junk'));
  t.ok(a.r.failed);
  t.match(a.out, /box: ldd .*junk\/mediasoup-worker exited 1: .*not a dynamic executable/);
});
