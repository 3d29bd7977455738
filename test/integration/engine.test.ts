// The engine against REAL nodes (sshd, systemd, ufw in the nspawn test cluster): idempotence,
// honest plans, stale plan refusal, handler notifications surviving a failure, unreachable hosts,
// changed host keys, invalid input that changes nothing, secrets that never print.
import t from 'tap';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { ensureClusterUp, sshExec } from '../../src/cluster/cluster.ts';
import { provision as cli, recapChanged, root } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const fx = join(root, 'test', 'fixtures', 'engine');
const SECRET = 'tok-9f8e7d6c5b4a-engine-test';


const sh = async (node: string, cmd: string) => (await sshExec(node, cmd)).stdout.trim();

t.test('engine on the test cluster', async (t) => {
  const cluster = await ensureClusterUp();
  const inv = cluster.inventory;
  const cleanup = 'systemctl disable --now orama-engine-test@one.service 2>/dev/null; rm -rf /etc/orama-engine-test /etc/orama-engine-test-bad /etc/systemd/system/orama-engine-test@.service /var/lib/orama-provision; systemctl daemon-reload; true';
  // Firewall: the node-base set (ssh, mesh) first, then this suite's own sets emptied — other
  // namespaces' rules on the nodes stay untouched.
  const fwReset = join(tempDir(t, 'orama-fw-reset-'), 'reset.yml');
  writeFileSync(fwReset, '- hosts: cluster\n  gather_facts: false\n  tasks:\n    - ufw: { set: engine-test, rules: [] }\n    - ufw: { set: engine-base, rules: [] }\n');
  const reset = async () => {
    await Promise.all(cluster.hosts.map((h) => sshExec(h.name, cleanup)));
    await cli(['apply', join(root, 'playbooks', 'node-base.yml'), '-i', inv, '--tags', 'firewall']);
    await cli(['apply', fwReset, '-i', inv]);
  };
  await reset();
  t.teardown(reset);

  await t.test('a plan on fresh nodes lists every change, exit 2, and hides the secret', async (t) => {
    const planFile = join(tempDir(t, 'orama-plan-'), 'plan.json');
    const r = await cli(['plan', join(fx, 'site.yml'), '-i', inv, '--out', planFile]);
    t.equal(r.code, 2, 'exit 2 = changes');
    t.match(r.out, /\+ file \/etc\/orama-engine-test\/app\.conf/);
    t.match(r.out, /\+token = \(sensitive\)/, 'the diff is shown with the secret redacted');
    t.match(r.out, /\+ ufw rule allow 4100\/tcp from any/);
    t.match(r.out, /Plan: \d+ to add, \d+ to change, 0 to destroy\./);
    t.notMatch(r.out, SECRET, 'secret not in plan output');
    t.notMatch(readFileSync(planFile, 'utf8'), SECRET, 'secret not in plan file');
    t.equal(await sh('node1', 'test -e /etc/orama-engine-test && echo yes || echo no'), 'no', 'plan changed nothing');
    const j = await cli(['plan', join(fx, 'site.yml'), '-i', inv, '--json']);
    t.equal(j.code, 2, 'plan --json exits 2 (changes pending)');
    t.notMatch(j.out, SECRET, 'secret not in JSON events');
    t.ok(j.out.split('\n').filter(Boolean).every((l) => JSON.parse(l)), 'every line is a JSON event');
  });

  await t.test('first apply changes, second apply changes nothing, plan after apply exits 0', async (t) => {
    const first = await cli(['apply', join(fx, 'site.yml'), '-i', inv]);
    t.equal(first.code, 0, first.out.slice(-2000));
    t.ok(recapChanged(first.out) > 0, 'first apply changed things');
    t.notMatch(first.out, SECRET);
    t.equal(await sh('node2', 'systemctl is-active orama-engine-test@one.service'), 'active');
    t.match(await sh('node2', 'cat /etc/orama-engine-test/app.conf'), `token = ${SECRET}`, 'the node has the real secret');
    t.equal(await sh('node2', 'stat -c %a /etc/orama-engine-test/app.conf'), '640');
    const second = await cli(['apply', join(fx, 'site.yml'), '-i', inv]);
    t.equal(second.code, 0);
    t.equal(recapChanged(second.out), 0, 'second apply: changed=0 on every host');
    const p = await cli(['plan', join(fx, 'site.yml'), '-i', inv]);
    t.equal(p.code, 0, 'plan after apply: exit 0');
    t.match(p.out, /No changes/);
  });

  await t.test('a saved plan is refused once a node drifted, and nothing is applied', async (t) => {
    await sshExec('node1', 'rm /etc/orama-engine-test/a.txt');
    const planFile = join(tempDir(t, 'orama-plan-'), 'plan.json');
    const p = await cli(['plan', join(fx, 'site.yml'), '-i', inv, '--out', planFile]);
    t.equal(p.code, 2);
    t.match(p.out, /\+ file \/etc\/orama-engine-test\/a\.txt/);
    await sshExec('node3', "sed -i 's/^listen/#listen/' /etc/orama-engine-test/app.conf");
    const a = await cli(['apply', planFile]);
    t.equal(a.code, 1, 'refused');
    t.match(a.out, /plan is stale: node3 changed/);
    t.equal(await sh('node1', 'test -e /etc/orama-engine-test/a.txt && echo yes || echo no'), 'no', 'nothing applied on node1 either');
    const p2 = await cli(['plan', join(fx, 'site.yml'), '-i', inv, '--out', planFile]);
    t.equal(p2.code, 2);
    const a2 = await cli(['apply', planFile]);
    t.equal(a2.code, 0, 'a fresh plan applies');
    t.equal(await sh('node1', 'cat /etc/orama-engine-test/a.txt'), 'a');
    t.match(await sh('node3', 'cat /etc/orama-engine-test/app.conf'), /^listen = 10\.77\.0\.13:4100$/m);
  });

  await t.test('a failure after a notification keeps it; the next apply runs the handler', async (t) => {
    const before = Number(await sh('node2', 'wc -l < /etc/orama-engine-test/restarts 2>/dev/null || echo 0'));
    const r = await cli(['apply', join(fx, 'site.yml'), '-i', inv, '-e', 'app_port=4200', '-e', 'fail_now=true', '--limit', 'node2']);
    t.equal(r.code, 1, 'apply failed');
    t.match(r.out, /failing because fail_now is set/);
    t.match(await sh('node2', 'cat /var/lib/orama-provision/pending/*.json'), 'restart app', 'notification persisted on the host (one file per play)');
    t.equal(Number(await sh('node2', 'wc -l < /etc/orama-engine-test/restarts 2>/dev/null || echo 0')), before, 'handler did not run yet');
    const p = await cli(['plan', join(fx, 'site.yml'), '-i', inv, '-e', 'app_port=4200', '--limit', 'node2']);
    t.match(p.out, /handler "restart app" was notified by an earlier run/, 'the plan says the pending handler will run');
    const again = await cli(['apply', join(fx, 'site.yml'), '-i', inv, '-e', 'app_port=4200', '--limit', 'node2']);
    t.equal(again.code, 0, again.out.slice(-1500));
    t.match(again.out, /TASK \[handler: restart app\]/);
    t.equal(Number(await sh('node2', 'wc -l < /etc/orama-engine-test/restarts')), before + 1, 'handler ran once on the next apply');
    t.equal(await sh('node2', 'ls /var/lib/orama-provision/pending/ | wc -l'), '0', 'pending list cleared');
    await cli(['apply', join(fx, 'site.yml'), '-i', inv, '--limit', 'node2']);
  });

  await t.test('removing a rule from the desired firewall set closes the port', async (t) => {
    const base = join(tempDir(t, 'orama-fw-'), 'fw.yml');
    const fw = (ports: number[]) =>
      writeFileSync(base, `- hosts: node2\n  tasks:\n    - ufw:\n        set: engine-base\n        rules: [${[22, ...ports].map((p) => `{ port: ${p}, proto: tcp }`).join(', ')}]\n        default_incoming: deny\n        state: enabled\n`);
    fw([4300]);
    t.equal((await cli(['apply', base, '-i', inv])).code, 0);
    await sshExec('node2', 'systemd-run --unit=orama-engine-nc -p RuntimeMaxSec=60 nc -lk -p 4300 >/dev/null');
    const probe = async () => (await sshExec('node1', 'nc -z -w 2 10.77.0.12 4300 && echo open || echo closed')).stdout.trim();
    t.equal(await probe(), 'open', 'allowed port reachable from node1');
    fw([]);
    const p = await cli(['plan', base, '-i', inv]);
    t.equal(p.code, 2);
    t.match(p.out, /- ufw rule allow 4300\/tcp from any/, 'the plan shows the removal');
    t.equal((await cli(['apply', base, '-i', inv])).code, 0);
    t.equal(await probe(), 'closed', 'port closed after the rule left the set');
    await sshExec('node2', 'systemctl stop orama-engine-nc 2>/dev/null; true');
  });

  await t.test('an unreachable host is reported; the others go on', async (t) => {
    const dir = tempDir(t, 'orama-inv-');
    // A host on the cluster's bridge where no node answers.
    const data = YAML.parse(readFileSync(inv, 'utf8'));
    data.all.hosts.ghost = { address: '10.77.0.99', key: cluster.key, known_hosts: cluster.knownHosts };
    data.all.children.cluster.hosts.ghost = {};
    writeFileSync(join(dir, 'inv.yml'), YAML.stringify(data));
    const r = await cli(['apply', join(fx, 'site.yml'), '-i', join(dir, 'inv.yml'), '--limit', 'node1:ghost']);
    t.equal(r.code, 1, 'exit 1 when a host is unreachable');
    t.match(r.out, /unreachable: \[ghost\]/);
    t.match(r.out, /ghost\s+: ok=0 changed=0 unreachable=1/);
    t.match(r.out, /node1\s+: ok=\d+ changed=0 unreachable=0 failed=0/);
  });

  await t.test('a changed host key is refused with a clear error', async (t) => {
    const dir = tempDir(t, 'orama-kh-');
    const kh = join(dir, 'known_hosts');
    copyFileSync(cluster.knownHosts, kh);
    // Swap node1's and node2's keys: node1 now "presents a different key than before".
    const lines = readFileSync(kh, 'utf8').split('\n');
    const isFor = (l: string, ip: string) => l.split(' ')[0].split(',').includes(ip) && l.includes('ssh-ed25519');
    const key = (ip: string) => lines.find((l) => isFor(l, ip))!.split(' ')[2];
    const k1 = key('10.77.0.11');
    const k2 = key('10.77.0.12');
    writeFileSync(kh, lines.map((l) => (isFor(l, '10.77.0.11') ? l.replace(k1, k2) : l)).join('\n'));
    writeFileSync(join(dir, 'inv.yml'), readFileSync(inv, 'utf8').split(cluster.knownHosts).join(kh));
    const r = await cli(['plan', join(fx, 'site.yml'), '-i', join(dir, 'inv.yml'), '--limit', 'node1:node2']);
    t.equal(r.code, 1);
    t.match(r.out, /HOST KEY CHANGED for 10\.77\.0\.11:22/);
    t.match(r.out, /node2\s+: ok=\d+/, 'node2 still planned');
    const fresh = join(dir, 'empty_known_hosts');
    writeFileSync(join(dir, 'inv2.yml'), readFileSync(inv, 'utf8').split(cluster.knownHosts).join(fresh));
    const unknown = await cli(['plan', join(fx, 'site.yml'), '-i', join(dir, 'inv2.yml'), '--limit', 'node1']);
    t.match(unknown.out, /host key of 10\.77\.0\.11:22 is not known/);
    const tofu = await cli(['plan', join(fx, 'site.yml'), '-i', join(dir, 'inv2.yml'), '--limit', 'node1', '--accept-new-host-keys']);
    t.equal(tofu.code, 0, 'trusted on first use when asked');
    t.match(readFileSync(fresh, 'utf8'), /^10\.77\.0\.11 ssh-ed25519 /m);
  });

  await t.test('become: the vagrant user gets root through sudo -n, and nothing without it', async (t) => {
    const dir = tempDir(t, 'orama-become-');
    const data = YAML.parse(readFileSync(inv, 'utf8'));
    for (const h of Object.values<any>(data.all.hosts)) h.user = 'vagrant';
    writeFileSync(join(dir, 'user.yml'), YAML.stringify(data));
    for (const h of Object.values<any>(data.all.hosts)) h.become = true;
    writeFileSync(join(dir, 'become.yml'), YAML.stringify(data));
    writeFileSync(join(dir, 'pb.yml'), '- hosts: node1\n  gather_facts: false\n  tasks:\n    - file: { path: /etc/orama-engine-test-bad, state: directory, mode: "0700" }\n');
    const denied = await cli(['apply', join(dir, 'pb.yml'), '-i', join(dir, 'user.yml')]);
    t.equal(denied.code, 1, 'as plain vagrant: refused');
    t.match(denied.out, /Permission denied/);
    const ok = await cli(['apply', join(dir, 'pb.yml'), '-i', join(dir, 'become.yml')]);
    t.equal(ok.code, 0, ok.out.slice(-1500));
    t.equal(await sh('node1', 'stat -c %U:%a /etc/orama-engine-test-bad'), 'root:700', 'created as root through sudo');
    await sshExec('node1', 'rmdir /etc/orama-engine-test-bad');
  });

  await t.test('invalid playbooks name file:line and change nothing', async (t) => {
    const a = await cli(['apply', join(fx, 'bad-module.yml'), '-i', inv]);
    t.equal(a.code, 1);
    t.match(a.out, /bad-module\.yml:6:7, task "typo in a module name", key "templat": unknown module or keyword "templat"/);
    const b = await cli(['apply', join(fx, 'bad-args.yml'), '-i', inv]);
    t.equal(b.code, 1);
    t.match(b.out, /bad-args\.yml:6:\d+.*"state" must be one of "started", "stopped", "restarted", "reloaded"/);
    t.equal(await sh('node1', 'test -e /etc/orama-engine-test-bad && echo yes || echo no'), 'no', 'the valid first task did not run');
  });
});
