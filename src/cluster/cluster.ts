// The cluster as a whole: up (idempotent), down (leaves nothing behind), status, stop/start/reboot
// of one node. Also the programmatic API other test suites call.
import { $ } from 'zx';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type ClusterConfig, type ClusterOptions, type NodeConfig, clusterConfig, nodeConfig, nodeConfigs, keyPath, knownHostsPath } from './config.ts';
import { ensureImage, ensureUnpacked, overlayBase, recordOverlayBase } from './image.ts';
import { ensureBridges, ensureNodeNet, ownedNetwork, removeNetwork } from './network.ts';
import { ensureFirewall, removeFirewall, taggedRules } from './firewall.ts';
import { ensureIdentity, ensureOverlay, isRunning, launcherPid, nspawnPid, ownedCgroups, powerOffNode, removeOwnedCgroups, startNode, stopNode, writeNodeFiles } from './node.ts';
import { ensureClientKey, sshRun, waitForSsh, writeKnownHosts, type ExecResult } from './ssh.ts';
import { inventoryPath, writeInventory } from './inventory.ts';
import { mountsUnder, umountUnder } from './host.ts';
import { withLock } from './lock.ts';

const locked = <T>(c: ClusterConfig, what: string, fn: () => Promise<T>) => withLock(`${c.stateDir}.lock`, `cluster "${c.name}" ${what}`, fn);

export type Log = (msg: string) => void;
const quiet: Log = () => {};

export interface ClusterHost {
  name: string;
  address: string;        // public IP, what ssh uses
  publicIp: string;
  internalIp: string;
  wgIp: string;
  port: number;
  key: string;
  knownHosts: string;
}

export interface ClusterInfo {
  name: string;
  hosts: ClusterHost[];
  key: string;
  knownHosts: string;
  inventory: string;
  config: ClusterConfig;
}

const REQUIRED_COMMANDS = ['debootstrap', 'systemd-nspawn', 'zstd', 'tar', 'ip', 'iptables', 'ip6tables', 'ssh', 'ssh-keygen', 'mount', 'chroot'];

/** Throws one error listing everything missing, so CI fails with the whole list at once. */
export async function checkPrerequisites(): Promise<void> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('must run as root (network namespaces, bridges, mounts, cgroups)');
  for (const cmd of REQUIRED_COMMANDS) {
    if ((await $`command -v ${cmd}`.nothrow()).exitCode !== 0) problems.push(`command "${cmd}" not found (apt packages: see .ci/apt-packages)`);
  }
  for (const p of ['/sys/fs/cgroup/systemd', '/dev/net/tun']) if (!existsSync(p)) problems.push(`${p} missing`);
  if (problems.length) throw new Error(`test cluster prerequisites missing:\n  - ${problems.join('\n  - ')}`);
}

export async function clusterUp(opts: ClusterOptions = {}, log: Log = quiet): Promise<ClusterInfo> {
  const c = clusterConfig(opts);
  await checkPrerequisites();
  return locked(c, 'up', () => up(c, log));
}

async function up(c: ClusterConfig, log: Log): Promise<ClusterInfo> {
  mkdirSync(c.stateDir, { recursive: true });
  const nodes = nodeConfigs(c);
  const tarball = await ensureImage(c, log);
  const lower = await ensureUnpacked(tarball);
  const base = overlayBase(c, lower);
  if (base !== 'current') {
    const running = existingNodes(c).filter(isRunning);
    if (running.length) {
      throw new Error(`image ${tarball} differs from the base under running nodes (${running.map((n) => n.name).join(', ')}): run \`cluster down\` first`);
    }
    await umountUnder(c.stateDir);
    // Overlays made over another image would mix two bases: those nodes start fresh.
    if (base === 'stale') {
      log(`image changed: discarding node overlays in ${c.stateDir}`);
      for (const n of existingNodes(c)) rmSync(n.dir, { recursive: true, force: true });
    }
    recordOverlayBase(c, lower);
  }
  const pubKey = await ensureClientKey(c);
  await ensureBridges(c);
  await ensureFirewall(c);
  for (const n of nodes) {
    if (isRunning(n)) continue;
    await ensureNodeNet(c, n);
    await ensureOverlay(c, n, lower);
    await ensureIdentity(n);
    writeNodeFiles(c, n, pubKey);
  }
  writeKnownHosts(c, nodes);
  const inventory = writeInventory(c, nodes);
  const started: string[] = [];
  for (const n of nodes) if (!isRunning(n)) { await startNode(n); started.push(n.name); }
  await Promise.all(nodes.map((n) => waitForSsh(c, n)));
  log(started.length ? `started ${started.join(', ')}; ssh ready on all ${nodes.length} nodes` : `all ${nodes.length} nodes already up`);
  return info(c, inventory);
}

function info(c: ClusterConfig, inventory: string): ClusterInfo {
  return {
    name: c.name,
    key: keyPath(c),
    knownHosts: knownHostsPath(c),
    inventory,
    config: c,
    hosts: nodeConfigs(c).map((n) => ({
      name: n.name, address: n.publicIp, publicIp: n.publicIp, internalIp: n.internalIp, wgIp: n.wgIp,
      port: 22, key: keyPath(c), knownHosts: knownHostsPath(c),
    })),
  };
}

/** Nodes present on disk or running, whatever size the cluster was brought up with. */
function existingNodes(c: ClusterConfig): NodeConfig[] {
  const dirs = existsSync(c.stateDir) ? readdirSync(c.stateDir).filter((d) => /^node\d+$/.test(d)) : [];
  const count = Math.max(c.nodes, ...dirs.map((d) => Number(d.slice(4))));
  return nodeConfigs({ ...c, nodes: count });
}

export async function clusterDown(opts: ClusterOptions & { wipe?: boolean } = {}, log: Log = quiet): Promise<void> {
  const c = clusterConfig(opts);
  await locked(c, 'down', () => down(c, !!opts.wipe, log));
}

async function down(c: ClusterConfig, wipe: boolean, log: Log): Promise<void> {
  const nodes = existingNodes(c);
  await Promise.all(nodes.map((n) => stopNode(n)));
  removeOwnedCgroups(c);
  await umountUnder(c.stateDir);
  await removeNetwork(c);
  await removeFirewall(c);
  if (wipe) {
    rmSync(c.stateDir, { recursive: true, force: true });
    // Its key and known_hosts are gone: an inventory pointing at them would only mislead.
    rmSync(inventoryPath(c), { force: true });
  }
  log(`cluster "${c.name}" down${wipe ? ' and wiped (image cache kept)' : ''}`);
}

/** What the host still holds for this cluster; all empty after `down`. */
export async function clusterLeftovers(opts: ClusterOptions = {}): Promise<Record<string, string[]>> {
  const c = clusterConfig(opts);
  const net = ownedNetwork(c);
  const nodes = existingNodes(c);
  return {
    processes: nodes.flatMap((n) => [launcherPid(n), nspawnPid(n)].filter((p) => p !== undefined).map((p) => `${n.name}:${p}`)),
    mounts: mountsUnder(c.stateDir),
    netns: net.netns,
    links: net.links,
    cgroups: ownedCgroups(c),
    firewall: (await taggedRules(c)).map((r) => `${r.tool} ${r.rule.join(' ')}`),
  };
}

export interface NodeStatus { name: string; running: boolean; pid?: number; publicIp: string; internalIp: string; ssh: boolean }

export async function clusterStatus(opts: ClusterOptions = {}): Promise<NodeStatus[]> {
  const c = clusterConfig(opts);
  return Promise.all(existingNodes(c).map(async (n) => {
    const running = isRunning(n);
    const ssh = running && existsSync(knownHostsPath(c)) && (await sshRun(c, n, 'true', 'root', 5000)).code === 0;
    return { name: n.name, running, pid: nspawnPid(n), publicIp: n.publicIp, internalIp: n.internalIp, ssh };
  }));
}

export async function stopClusterNode(index: number, opts: ClusterOptions = {}): Promise<void> {
  const c = clusterConfig(opts);
  await locked(c, `stop node${index}`, () => stopNode(nodeConfig(c, index)));
}

/** Node `index` loses power: links down, every process SIGKILLed (see node.ts powerOffNode). */
export async function powerOffClusterNode(index: number, opts: ClusterOptions = {}): Promise<void> {
  const c = clusterConfig(opts);
  const n = nodeConfig(c, index);
  await locked(c, `power off ${n.name}`, async () => {
    if (!isRunning(n)) throw new Error(`${n.name}: not running`);
    await powerOffNode(n);
  });
}

export async function startClusterNode(index: number, opts: ClusterOptions = {}): Promise<void> {
  const c = clusterConfig(opts);
  const n = nodeConfig(c, index);
  await locked(c, `start ${n.name}`, async () => {
    if (!mountsUnder(n.root).includes(n.root) || !existsSync(join(n.dir, 'identity'))) {
      throw new Error(`${n.name}: not set up (no overlay at ${n.root}); run \`cluster up\` first`);
    }
    await ensureNodeNet(c, n);
    await startNode(n);
    await waitForSsh(c, n);
  });
}

/** `systemctl reboot` inside the node, then waits until the launcher has booted it again. */
export async function rebootClusterNode(index: number, opts: ClusterOptions = {}): Promise<void> {
  const c = clusterConfig(opts);
  const n = nodeConfig(c, index);
  await locked(c, `reboot ${n.name}`, async () => {
    const before = nspawnPid(n);
    if (!before) throw new Error(`${n.name}: not running`);
    await sshRun(c, n, 'systemctl reboot', 'root', 10_000);
    const deadline = Date.now() + 60_000;
    while (nspawnPid(n) === before || !nspawnPid(n)) {
      if (!launcherPid(n)) throw new Error(`${n.name}: launcher exited instead of rebooting; see ${n.dir}/console.log`);
      if (Date.now() > deadline) throw new Error(`${n.name}: did not reboot within 60s; see ${n.dir}/console.log`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitForSsh(c, n);
  });
}

/** For other test suites: the cluster, brought up if it is not (fast when it already is). */
export async function ensureClusterUp(opts: ClusterOptions = {}): Promise<ClusterInfo> {
  return clusterUp(opts);
}

/** Runs a command as root (or `user`) on a node by name ("node2") or index. */
export async function sshExec(node: string | number, cmd: string, opts: ClusterOptions & { user?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  const c = clusterConfig(opts);
  const index = typeof node === 'number' ? node : Number(node.replace(/^node/, ''));
  return sshRun(c, nodeConfig(c, index), cmd, opts.user ?? 'root', opts.timeoutMs);
}
