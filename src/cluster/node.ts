// One node: an overlay over the shared base, its first-boot identity, and its launcher (boot loop in
// its own cgroup). Processes are found and signalled only through the pidfiles written here.
import { $ } from 'zx';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync, closeSync, chmodSync, chownSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClusterConfig, type NodeConfig, nodeConfigs } from './config.ts';
import { mountsUnder, run } from './host.ts';
import { cgroupHierarchies, detectCgroupMode, launcherEnv } from './cgroups.ts';

// From the repository's root (two levels up, from src/cluster/ and from the bundled dist/cli/ alike).
const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cluster', 'launcher.sh');
const CGROUP_MODE = detectCgroupMode();
const CGROUP_HIERARCHIES = cgroupHierarchies(CGROUP_MODE);

export const cgroupName = (n: NodeConfig) => n.netns;

export async function ensureOverlay(c: ClusterConfig, n: NodeConfig, lower: string): Promise<void> {
  for (const d of ['upper', 'work', 'root']) mkdirSync(join(n.dir, d), { recursive: true });
  if (mountsUnder(n.root).includes(n.root)) return;
  const opts = `lowerdir=${lower},upperdir=${n.dir}/upper,workdir=${n.dir}/work`;
  await run(`${n.name}: mounting overlay on ${n.root}`, $`mount -t overlay ${`otc-${c.name}-${n.name}`} -o ${opts} ${n.root}`);
}

/** Machine-id, hostname and ssh host key: created once per node, kept across reboots and `down`,
 * regenerated only after a wipe (so known_hosts must come from here, never from a first connect). */
export async function ensureIdentity(n: NodeConfig): Promise<void> {
  const marker = join(n.dir, 'identity');
  if (existsSync(marker)) return;
  writeFileSync(join(n.root, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`);
  writeFileSync(join(n.root, 'etc/hostname'), `${n.name}\n`);
  const key = join(n.root, 'etc/ssh/ssh_host_ed25519_key');
  await $`rm -f ${key} ${key}.pub`;
  await run(`${n.name}: generating ssh host key ${key}`, $`ssh-keygen -q -t ed25519 -N ${''} -C root@${n.name} -f ${key}`);
  writeFileSync(marker, `${new Date().toISOString()}\n`);
}

/** Files that follow the cluster's current shape and key: rewritten on every start. */
export function writeNodeFiles(c: ClusterConfig, n: NodeConfig, clientPubKey: string): void {
  const peers = nodeConfigs(c).map((p) => `${p.publicIp}\t${p.name}\n${p.internalIp}\t${p.name}-int`).join('\n');
  writeFileSync(join(n.root, 'etc/hosts'),
    `127.0.0.1\tlocalhost\n127.0.1.1\t${n.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n${peers}\n`);
  for (const home of ['root', 'home/vagrant']) {
    const sshDir = join(n.root, home, '.ssh');
    const { uid, gid } = statSync(sshDir);
    const file = join(sshDir, 'authorized_keys');
    writeFileSync(file, `${clientPubKey}\n`);
    chmodSync(file, 0o600);
    chownSync(file, uid, gid);
  }
}

function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

// A pidfile can outlive its process and the PID be reused: accept it only if the process's
// command line still names this node's directory.
function ourPid(file: string, n: NodeConfig): number | undefined {
  const pid = readPid(file);
  if (!pid) return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(n.dir) ? pid : undefined;
  } catch { return undefined; }
}

export const launcherPid = (n: NodeConfig) => ourPid(join(n.dir, 'launcher.pid'), n);
export const nspawnPid = (n: NodeConfig) => ourPid(join(n.dir, 'nspawn.pid'), n);
export const isRunning = (n: NodeConfig) => launcherPid(n) !== undefined;

export function nspawnArgv(n: NodeConfig): string[] {
  return [
    '--quiet', '--boot', `--directory=${n.root}`, `--machine=${n.netns}`, `--hostname=${n.name}`,
    // No system bus on this host: without these nspawn dies with "Failed to open system bus".
    '--register=no', '--keep-unit',
    `--network-namespace-path=/run/netns/${n.netns}`,
    // ufw inside needs CAP_NET_ADMIN and a writable /proc/sys/net (env set by the launcher).
    '--capability=CAP_NET_ADMIN',
    '--bind=/dev/net/tun', // wireguard-go
    '--resolv-conf=off', '--timezone=off', '--link-journal=no', '--console=read-only',
  ];
}

export async function startNode(n: NodeConfig): Promise<void> {
  if (isRunning(n)) return;
  const log = openSync(join(n.dir, 'console.log'), 'a');
  try {
    const child = spawn('/bin/bash', [LAUNCHER, n.dir, cgroupName(n), '--', ...nspawnArgv(n)], {
      detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...launcherEnv(CGROUP_MODE) },
    });
    child.unref();
  } finally { closeSync(log); }
  const deadline = Date.now() + 10_000;
  while (!nspawnPid(n)) {
    if (Date.now() > deadline) {
      throw new Error(`${n.name}: launcher ${LAUNCHER} did not start systemd-nspawn; see ${n.dir}/console.log`);
    }
    await sleep(50);
  }
}

export async function stopNode(n: NodeConfig, timeoutMs = 30_000): Promise<void> {
  const launcher = launcherPid(n);
  if (!launcher) { removeCgroups(n); return; }
  // SIGTERM to nspawn makes the node's systemd power off cleanly (about 2 s); the launcher then
  // sees exit 0 and ends its loop.
  signal(nspawnPid(n) ?? launcher, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (launcherPid(n) === launcher) {
    if (Date.now() > deadline) {
      const pid = nspawnPid(n);
      if (pid) signal(pid, 'SIGKILL');
      if (Date.now() > deadline + 5000) throw new Error(`${n.name}: launcher ${launcher} did not exit after SIGTERM/SIGKILL`);
    }
    await sleep(100);
  }
  await drainCgroups(n);
  removeCgroups(n);
}

/**
 * Power loss, not a shutdown: the node's links go down first (so no FIN, RST or goodbye leaves
 * it: peers see silence, as when a machine loses power), then every process of the node is
 * stopped (SIGSTOP: none forks or reacts) and SIGKILLed, by PID, from its cgroup tree. The
 * links stay down until the node is started again (ensureNodeNet raises them).
 */
export async function powerOffNode(n: NodeConfig): Promise<void> {
  for (const link of [n.vethPub, n.vethInt]) await $`ip link set ${link} down`;
  for (const sig of ['SIGSTOP', 'SIGKILL'] as const) {
    // Repeat until no new PID shows up (a fork between listing and signalling).
    const seen = new Set<number>();
    for (let round = 0; round < 20; round++) {
      const fresh = cgroupPids(n).filter((p) => !seen.has(p));
      if (!fresh.length) break;
      for (const pid of fresh) { seen.add(pid); signal(pid, sig); }
    }
  }
  const deadline = Date.now() + 10_000;
  while (launcherPid(n) || cgroupPids(n).length) {
    if (Date.now() > deadline) throw new Error(`${n.name}: processes left after SIGKILL: ${cgroupPids(n).join(', ')}`);
    await sleep(100);
  }
  for (const f of ['launcher.pid', 'nspawn.pid']) rmSync(join(n.dir, f), { force: true });
  removeCgroups(n);
}

/** PIDs still inside the node's cgroup trees (every hierarchy, every level). */
function cgroupPids(n: NodeConfig): number[] {
  const pids: number[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    try { pids.push(...readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)); } catch { /* gone meanwhile */ }
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
  };
  for (const h of CGROUP_HIERARCHIES) walk(join(h, cgroupName(n)));
  return [...new Set(pids)];
}

/**
 * After the launcher has gone, the node's last processes may still be on their way out (a loaded
 * machine: seen in CI as EBUSY on rmdir). Wait for them, bounded; whatever is still inside after
 * that is the node's own (it can only have been started by our launcher in our cgroup) and gets
 * SIGKILL, by PID.
 */
async function drainCgroups(n: NodeConfig, waitMs = 10_000): Promise<void> {
  let deadline = Date.now() + waitMs;
  let killed = false;
  for (;;) {
    const pids = cgroupPids(n);
    if (!pids.length) return;
    if (Date.now() > deadline) {
      if (killed) return; // removeCgroups reports what is left
      for (const pid of pids) signal(pid, 'SIGKILL');
      killed = true;
      deadline = Date.now() + 3000;
    }
    await sleep(100);
  }
}

function signal(pid: number, sig: NodeJS.Signals) {
  try { process.kill(pid, sig); } catch (e: any) { if (e.code !== 'ESRCH') throw e; }
}

/** Removes the node's cgroup trees (deepest first); they must be empty by now. */
export function removeCgroups(n: NodeConfig): void {
  for (const h of CGROUP_HIERARCHIES) removeCgroupTree(join(h, cgroupName(n)));
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  try { rmdirSync(dir); } catch (e: any) {
    throw new Error(`cannot remove cgroup ${dir}: ${e.code} (processes still inside: ${readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').join(' ') || 'none'})`);
  }
}

export function ownedCgroups(c: ClusterConfig): string[] {
  const prefix = `otc-${c.name}-`;
  return CGROUP_HIERARCHIES.flatMap((h) => (existsSync(h) ? readdirSync(h) : [])
    .filter((d) => d.startsWith(prefix)).map((d) => join(h, d)));
}

export function removeOwnedCgroups(c: ClusterConfig): void {
  for (const d of ownedCgroups(c)) removeCgroupTree(d);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
