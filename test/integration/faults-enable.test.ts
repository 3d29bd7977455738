// `orama namespace enable webrtc` killed with SIGKILL in the middle, at task indexes drawn from a
// seed (reproducible, not timed: the kill follows the Nth task event of --json, whatever the
// clock), three times in a row on the real test cluster; then one more enable must converge —
// exit 0, healthy, the same TURN secret and port blocks the first run decided — and the
// inspector must find nothing (no orphan unit, no stray firewall rule, no state file out of
// step). Then disable with a node down finishes on the others and says what is left; once the
// node is back the same command finishes, leaving nothing of the namespace on any node or in the
// operator store.
// ORAMA_FAULT_SEED=N re-runs another draw.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { sshExec, startClusterNode, stopClusterNode } from '../../src/cluster/cluster.ts';
import { nodeConfig } from '../../src/cluster/config.ts';
import { clusterSuite } from '../helpers/cluster-suite.ts';
import { root } from '../helpers/cli.ts';

const NS = 'crash';
const SEED = Number(process.env.ORAMA_FAULT_SEED ?? 20261201);

/** mulberry32: a small seeded PRNG, so a draw is the same on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test(`enable killed at seeded task indexes (seed ${SEED}), then re-run: it converges, nothing orphaned`, async (t) => {
  const { cluster, state, orama, base } = await clusterSuite();
  t.equal(base.code, 0, 'node-base');
  const env = { ...process.env, ORAMA_STATE: state, ORAMA_INVENTORY: cluster.inventory };
  t.teardown(() => orama('namespace', 'disable', 'webrtc', '--namespace', NS, '--force'));

  // How many tasks a full enable has: its plan's task events.
  const plan = await orama('namespace', 'enable', 'webrtc', '--namespace', NS, '--plan', '--json');
  const total = plan.stdout.split('\n').filter((l) => l.startsWith('{"event":"task"')).length;
  t.ok(total > 20, `a full enable runs ${total} tasks`);
  // One index in each third of the run (early: TURN; middle: SFU, gateway, the database seed;
  // late: firewall, state, DNS, handlers), drawn from the seed.
  const next = rng(SEED);
  const band = Math.floor((total - 2) / 3);
  const order = [0, 1, 2].map((b) => 2 + b * band + Math.floor(next() * band));

  const killAt = (n: number) => new Promise<{ task: string; signal: string | null }>((resolve, reject) => {
    const p = spawn('node', [join(root, 'bin', 'orama.js'), 'namespace', 'enable', 'webrtc', '--namespace', NS, '--json'], { cwd: root, env, stdio: ['ignore', 'pipe', 'ignore'] });
    let seen = 0;
    let task = '';
    const lines = createInterface({ input: p.stdout! });
    lines.on('line', (l) => {
      if (!l.startsWith('{"event":"task"')) return;
      seen++;
      task = JSON.parse(l).name;
      if (seen === n) process.kill(p.pid!, 'SIGKILL'); // the PID we started
    });
    p.on('error', reject);
    p.on('exit', (_code, signal) => resolve({ task, signal }));
  });

  const storeOf = () => {
    const db = new Database(state, { readonly: true });
    try {
      const cfg = db.prepare('SELECT turn_secret FROM namespace_webrtc_config WHERE namespace = ?').get(NS) as { turn_secret: string } | undefined;
      const ports = db.prepare('SELECT node, kind, port_start, port_end FROM webrtc_port_allocations WHERE namespace = ? ORDER BY node, kind').all(NS);
      return { secret: cfg?.turn_secret, ports: JSON.stringify(ports) };
    } finally {
      db.close();
    }
  };

  let first: { secret?: string; ports: string } | undefined;
  for (const n of order) {
    const r = await killAt(n);
    t.equal(r.signal, 'SIGKILL', `killed at task ${n} of ${total} ("${r.task}")`);
    first ??= storeOf();
  }
  t.ok(first?.secret, 'the first run had decided and stored the secret and ports before it was killed');

  const again = await orama('namespace', 'enable', 'webrtc', '--namespace', NS);
  t.equal(again.code, 0, again.code ? again.out.slice(-2500) : 'the re-run converges');
  const after = storeOf();
  t.equal(after.secret, first!.secret, 'with the same TURN secret');
  t.equal(after.ports, first!.ports, 'and the same port blocks');
  const status = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout);
  t.equal(status.healthy, true, 'healthy');
  const quiet = await orama('namespace', 'enable', 'webrtc', '--namespace', NS, '--plan');
  t.equal(quiet.code, 0, quiet.code ? quiet.out.slice(-2000) : 'a plan after it shows nothing left to do');
  const ins = await orama('inspector', '--namespace', NS, '--json');
  const report = JSON.parse(ins.stdout);
  t.same(report.findings, [], 'the inspector finds nothing: no orphan unit, no stray rule, state files in step');

  // Disable with a node down (cleanly stopped: ssh cannot reach it): the others are done, the
  // command says what is left and how to finish; once the node is back, the same command does.
  await stopClusterNode(3);
  t.teardown(() => startClusterNode(3).catch(() => undefined));
  const down = await orama('namespace', 'disable', 'webrtc', '--namespace', NS);
  t.equal(down.code, 1, 'disable with node3 down: exit 1');
  t.match(down.out, /did not finish on node3 \(unreachable\): the namespace's units, files and firewall set may remain on it; the operator store keeps the namespace .* Done on node1, node2\.\nOnce it is back: orama namespace disable webrtc --namespace crash/, 'it names the node, what is left and the command that finishes it');
  for (const i of [1, 2]) t.equal((await sshExec(`node${i}`, `systemctl list-units --all --no-legend --plain 'orama-namespace-*@${NS}.service' | wc -l`)).stdout.trim(), '0', `node${i}: done (no unit left)`);
  t.not(storeOf().ports, '[]', 'the operator store still has the namespace (what the re-run needs)');
  await startClusterNode(3);
  const d = await orama('namespace', 'disable', 'webrtc', '--namespace', NS);
  t.equal(d.code, 0, d.code ? d.out.slice(-2000) : 'disable again, node3 back: it finishes');
  for (let i = 1; i <= 3; i++) {
    const left = (await sshExec(`node${i}`, `systemctl list-units --all --no-legend --plain 'orama-namespace-*@${NS}.service' | wc -l; grep -c 'webrtc-${NS}' /etc/ufw/user.rules || true; ls -d /etc/orama/webrtc/${NS} /var/lib/orama/namespaces/${NS} /run/orama-gateway-${NS} 2>/dev/null | wc -l; ls /var/lib/orama-provision/pending | grep -c 'namespace-${NS}-' || true`)).stdout.trim().split('\n');
    t.same(left, ['0', '0', '0', '0'], `node${i}: no unit, firewall rule, directory or pending handler of ${NS} left`);
  }
  t.equal(storeOf().ports, '[]', 'the operator store holds no port block of it');
  const all = JSON.parse((await orama('inspector', '--json')).stdout);
  t.same(all.findings.filter((f: { namespace?: string }) => f.namespace === NS), [], 'and the inspector finds nothing of it anywhere');
});

// A node cut off in the middle of enable (its links down: no FIN, no RST, as when its network or
// power goes): the run fails on it within the ssh keepalive bound, naming the node and the task,
// and finishes on the others; with the node back, the same enable converges with the same secret
// and ports.
t.test('a node unreachable in the middle of enable: exit 1 naming node and task; back, the re-run converges', async (t) => {
  const NS2 = 'cutoff';
  const { cluster, state, orama } = await clusterSuite();
  const env = { ...process.env, ORAMA_STATE: state, ORAMA_INVENTORY: cluster.inventory };
  const n3 = nodeConfig(cluster.config, 3);
  const links = (how: 'up' | 'down') => execFileSync('sh', ['-c', `ip link set ${n3.vethPub} ${how} && ip link set ${n3.vethInt} ${how}`]);
  t.teardown(async () => {
    links('up');
    await orama('namespace', 'disable', 'webrtc', '--namespace', NS2, '--force');
  });
  const plan = await orama('namespace', 'enable', 'webrtc', '--namespace', NS2, '--plan', '--json');
  const total = plan.stdout.split('\n').filter((l) => l.startsWith('{"event":"task"')).length;
  const at = Math.floor(total / 2) + Math.floor(rng(SEED + 1)() * Math.floor(total / 4));
  const run = await new Promise<{ code: number | null; out: string; task: string; cutToExitMs: number }>((resolve, reject) => {
    const p = spawn('node', [join(root, 'bin', 'orama.js'), 'namespace', 'enable', 'webrtc', '--namespace', NS2], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let seen = 0;
    let task = '';
    let cutAt = 0;
    const onData = (d: Buffer) => {
      if (cutAt && process.env.ORAMA_FAULT_TRACE) process.stderr.write(d.toString().split('\n').map((l) => `+${Date.now() - cutAt} ${l}`).join('\n') + '\n');
      out += d.toString();
      for (const m of d.toString().matchAll(/^TASK \[(.+)\]/gm)) {
        seen++;
        if (seen === at) { task = m[1]; cutAt = Date.now(); links('down'); }
      }
    };
    p.stdout!.on('data', onData);
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out, task, cutToExitMs: Date.now() - cutAt }));
  });
  t.ok(run.task, `node3 cut off at task ${at} of ${total} ("${run.task}")`);
  t.equal(run.code, 1, 'enable exits 1');
  t.match(run.out, /unreachable: \[node3\]/, 'naming the node');
  const recap = /node3\s*:\s*ok=\d+\s+changed=\d+\s+unreachable=1/.exec(run.out);
  t.ok(recap, 'the recap counts node3 unreachable');
  t.match(run.out, /node1\s*:.*unreachable=0\s+failed=0/, 'node1 finished');
  const before = run.out.slice(0, Math.max(0, run.out.indexOf('unreachable: [node3]')));
  const failedTask = [...before.matchAll(/^TASK \[(.+)\]/gm)].at(-1)?.[1];
  t.ok(failedTask, `the task it was lost in is the one shown above the error ("${failedTask}")`);
  t.comment(`cut to exit: ${Math.round(run.cutToExitMs / 1000)} s (ssh keepalive: 3 × 5 s)`);
  if (!/unreachable: \[node3\]/.test(run.out)) t.comment(run.out.slice(-3000));
  const storeOf = () => {
    const db = new Database(state, { readonly: true });
    try {
      const cfg = db.prepare('SELECT turn_secret FROM namespace_webrtc_config WHERE namespace = ?').get(NS2) as { turn_secret: string } | undefined;
      return { secret: cfg?.turn_secret, ports: JSON.stringify(db.prepare('SELECT node, kind, port_start, port_end FROM webrtc_port_allocations WHERE namespace = ? ORDER BY node, kind').all(NS2)) };
    } finally {
      db.close();
    }
  };
  const first = storeOf();
  links('up');
  const again = await orama('namespace', 'enable', 'webrtc', '--namespace', NS2);
  t.equal(again.code, 0, again.code ? again.out.slice(-2500) : 'node3 back: the re-run converges');
  t.same(storeOf(), first, 'with the same TURN secret and port blocks');
  const status = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS2, '--json')).stdout);
  t.equal(status.healthy, true, 'healthy');
  const ins = JSON.parse((await orama('inspector', '--namespace', NS2, '--json')).stdout);
  t.same(ins.findings, [], 'the inspector finds nothing amiss');
  const d = await orama('namespace', 'disable', 'webrtc', '--namespace', NS2);
  t.equal(d.code, 0, d.code ? d.out.slice(-2000) : 'disabled');
});
