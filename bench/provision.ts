// npm run bench:provision — the same ~35-task playbook (templates, systemd units, ufw rules,
// files, handlers) on the 3 test nodes, by orama-provision and by ansible-playbook, side by side
// in one run: first apply, no-op re-apply, and plan (ansible: --check --diff).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { ensureClusterUp } from '../src/cluster/cluster.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'bench', 'provision');
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);

function timed(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, okCodes = [0]): { s: number; out: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (!okCodes.includes(r.status ?? -1)) throw new Error(`${label}: exit ${r.status}\n${(r.stdout + r.stderr).slice(-3000)}`);
  return { s, out: r.stdout + r.stderr };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const changedOf = (out: string) => [...out.matchAll(/changed=(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);

async function main() {
  if (!existsSync('/usr/bin/ansible-playbook')) throw new Error('ansible-playbook not found: apt-get install ansible (listed in .ci/apt-packages)');
  const cluster = await ensureClusterUp();
  const inv = cluster.inventory;
  const ours = (verb: string, ...extra: string[]) => ['bin/orama-provision.js', verb, join(dir, 'site.yml'), '-i', inv, ...extra];
  const reset = () => timed('reset', 'node', ['bin/orama-provision.js', 'apply', join(dir, 'reset.yml'), '-i', inv]);

  // The Ansible twin: same role, ufw as community.general.ufw per rule, an Ansible inventory.
  const work = mkdtempSync(join(tmpdir(), 'bench-ansible-'));
  cpSync(join(dir, 'roles'), join(work, 'roles'), { recursive: true });
  const tasksFile = join(work, 'roles/svc/tasks/main.yml');
  const tasks = readFileSync(tasksFile, 'utf8');
  writeFileSync(tasksFile, tasks.slice(0, tasks.indexOf('- name: firewall')) + readFileSync(join(dir, 'ansible-ufw-task.yml'), 'utf8'));
  const ourInv = YAML.parse(readFileSync(inv, 'utf8'));
  const hosts: Record<string, unknown> = {};
  for (const [name, h] of Object.entries<any>(ourInv.all.hosts)) {
    hosts[name] = {
      ansible_host: h.address, ansible_user: h.user, ansible_ssh_private_key_file: h.key,
      ansible_ssh_common_args: `-o UserKnownHostsFile=${h.known_hosts} -o StrictHostKeyChecking=yes`,
      ansible_python_interpreter: '/usr/bin/python3', public_ip: h.public_ip, wg_ip: h.wg_ip, internal_ip: h.internal_ip,
    };
  }
  writeFileSync(join(work, 'hosts.yml'), YAML.stringify({ all: { hosts, children: { cluster: { hosts: Object.fromEntries(Object.keys(hosts).map((h) => [h, {}])) } } } }));
  const site = (facts: boolean) => `- hosts: cluster\n  gather_facts: ${facts}\n  vars:\n    bench_secret: bench-secret-0123456789abcdef\n  roles: [svc]\n`;
  writeFileSync(join(work, 'site-default.yml'), site(true));
  writeFileSync(join(work, 'site-tuned.yml'), site(false));
  const ansible = (pb: string, tuned: boolean, ...extra: string[]) => timed(`ansible ${pb}`, 'ansible-playbook', ['-i', join(work, 'hosts.yml'), join(work, pb), ...extra], {
    ANSIBLE_PIPELINING: tuned ? 'True' : 'False', ANSIBLE_NOCOLOR: '1', ANSIBLE_FORKS: '10', ANSIBLE_RETRY_FILES_ENABLED: 'False',
  });

  // Ours runs precompiled (dist/cli/, what `npm ci` builds); --timings tells where its time goes.
  execFileSync('node', ['bin/build.js'], { cwd: root });
  const timingsOf = (out: string) => {
    const m = /TIMINGS: start-up (\d+) ms, connect (\d+) ms, facts (\d+) ms, tasks (\d+) ms .*?; (\d+) fact batches answered (\d+) scripts/.exec(out);
    if (!m) throw new Error('no TIMINGS line in our output:\n' + out.slice(-1500));
    const [startup, connect, facts, tasks, batches, batched] = m.slice(1).map(Number);
    return { startup, connect, facts, tasks, batches, batched };
  };

  reset();
  const o1 = timed('ours first apply', 'node', ours('apply'));
  reset();
  const a1 = ansible('site-tuned.yml', true);
  // Both are applied now (same end state: the twin differs only in how ufw is written).
  timed('ours converge', 'node', ours('apply'));
  // Interleaved rounds: each round runs ours and the peer back to back, so load drifts hit both.
  const rounds = { oNoop: [] as ReturnType<typeof timed>[], aNoop: [] as ReturnType<typeof timed>[], oPlan: [] as ReturnType<typeof timed>[], aCheck: [] as ReturnType<typeof timed>[], oUnbatched: [] as ReturnType<typeof timed>[] };
  for (let i = 0; i < REPEAT; i++) {
    rounds.oNoop.push(timed('ours no-op', 'node', ours('apply', '--timings')));
    rounds.aNoop.push(ansible('site-tuned.yml', true));
    rounds.oPlan.push(timed('ours plan', 'node', ours('plan')));
    rounds.aCheck.push(ansible('site-tuned.yml', true, '--check', '--diff'));
    rounds.oUnbatched.push(timed('ours no-op unbatched', 'node', ours('apply', '--no-batch')));
  }
  const aNoopDefault = ansible('site-default.yml', false);
  reset();
  if (rounds.oNoop.some((r) => changedOf(r.out) !== 0)) throw new Error('our no-op re-apply reported changes:\n' + rounds.oNoop[0].out.slice(-2000));
  if (rounds.aNoop.some((r) => changedOf(r.out) !== 0)) throw new Error('ansible\'s no-op re-apply reported changes:\n' + rounds.aNoop[0].out.slice(-2000));

  const secs = (rs: { s: number }[]) => rs.map((r) => r.s);
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
  const rows = [
    { run: 'first apply (once)', ours: [o1.s], peer: [a1.s], peerLabel: 'ansible tuned', note: `changed ours=${changedOf(o1.out)} ansible=${changedOf(a1.out)}` },
    { run: 'no-op re-apply', ours: secs(rounds.oNoop), peer: secs(rounds.aNoop), peerLabel: 'ansible tuned', note: 'changed=0 on both' },
    { run: 'no-op re-apply', ours: secs(rounds.oNoop), peer: [aNoopDefault.s], peerLabel: 'ansible defaults (once)', note: 'ansible with fact gathering, no pipelining' },
    { run: 'plan / --check --diff', ours: secs(rounds.oPlan), peer: secs(rounds.aCheck), peerLabel: 'ansible tuned', note: '' },
    { run: 'no-op re-apply, --no-batch', ours: secs(rounds.oUnbatched), peer: secs(rounds.aNoop), peerLabel: 'ansible tuned', note: 'one round trip per task and host' },
  ];
  const tm = rounds.oNoop.map((r) => timingsOf(r.out));
  const med = (k: keyof (typeof tm)[number]) => median(tm.map((x) => x[k]));
  const taskCount = (tasks.match(/^- name:/gm) ?? []).length;
  const lines = [
    `3 nodes (nspawn test cluster), ${taskCount} tasks per node + 3 handlers, ${REPEAT} interleaved rounds, ${new Date().toISOString().slice(0, 10)}, ${execFileSync('nproc').toString().trim()} cores; medians, ranges in brackets`,
    '',
    '| run | orama-provision (s) | peer | peer (s) | peer / ours | note |',
    '|---|---:|---|---:|---:|---|',
    ...rows.map((r) => `| ${r.run} | ${median(r.ours).toFixed(2)} [${range(r.ours)}] | ${r.peerLabel} | ${median(r.peer).toFixed(2)} [${range(r.peer)}] | ${(median(r.peer) / median(r.ours)).toFixed(1)}× | ${r.note} |`),
    '',
    `Where our no-op re-apply goes (medians of --timings, ms): start-up ${med('startup')} (Node, loading, parsing the playbook and inventory), connect ${med('connect')} (ssh to 3 hosts in parallel), facts ${med('facts')}, tasks ${med('tasks')} (${med('batches')} fact batches answering ${med('batched')} scripts for 3 hosts), the rest is exit.`,
  ];
  console.log(lines.join('\n'));
  if (process.env.BENCH_WRITE !== '0') writeSection('Provisioning engine (npm run bench:provision)', lines.join('\n'));
}

/** Replaces (or appends) one "## " section of docs/benchmarks.md, leaving the others alone. */
function writeSection(title: string, body: string) {
  const file = join(root, 'docs', 'benchmarks.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const head = `## ${title}`;
  const start = text.indexOf(head);
  const section = `${head}\n\n${body}\n`;
  let next: string;
  if (start < 0) next = text.trimEnd() + '\n\n' + section;
  else {
    const end = text.indexOf('\n## ', start + head.length);
    next = text.slice(0, start) + section + (end < 0 ? '' : text.slice(end + 1));
  }
  writeFileSync(file, next);
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
