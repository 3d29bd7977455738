// Host bridges ("pub", "int") and one network namespace per node, wired with two veths. Node IPs
// are set here, before boot, and survive node reboots because the namespace outlives nspawn.
import { $ } from 'zx';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import type { ClusterConfig, NodeConfig } from './config.ts';
import { run } from './host.ts';

const linkExists = (dev: string) => existsSync(`/sys/class/net/${dev}`);

// The host keeps no IPv6 address on our links, so a node cannot reach the host's [::] listeners
// over link-local. Per-interface sysctls vanish with the interface: nothing to restore on down.
function noIpv6(dev: string) {
  const p = `/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`;
  if (existsSync(p)) writeFileSync(p, '1');
}

export async function ensureBridges(c: ClusterConfig): Promise<void> {
  for (const [br, net] of [[c.pubBridge, c.pubNet], [c.intBridge, c.intNet]]) {
    if (!linkExists(br)) {
      await run(`creating bridge ${br}`, $`ip link add ${br} type bridge`);
      noIpv6(br);
      await run(`addressing bridge ${br}`, $`ip addr add ${net}.1/24 dev ${br}`);
    }
    await run(`bringing bridge ${br} up`, $`ip link set ${br} up`);
  }
}

function netnsList(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns') : [];
}

async function nodeNetReady(n: NodeConfig): Promise<boolean> {
  if (!netnsList().includes(n.netns) || !linkExists(n.vethPub) || !linkExists(n.vethInt)) return false;
  const r = await $`ip -n ${n.netns} -4 -o addr show`.nothrow();
  return r.stdout.includes(` ${n.publicIp}/24 `) && r.stdout.includes(` ${n.internalIp}/24 `);
}

/** Creates the node's namespace: eth0 on the public bridge (default route to the host, which
 * forwards nothing), eth1 on the internal bridge (WireGuard underlay). Leaves a complete one alone. */
export async function ensureNodeNet(c: ClusterConfig, n: NodeConfig): Promise<void> {
  if (await nodeNetReady(n)) {
    // Down after a power loss (node.ts powerOffNode); up is a no-op otherwise.
    for (const v of [n.vethPub, n.vethInt]) await run(`${n.name}: ${v} up`, $`ip link set ${v} up`);
    return;
  }
  await removeNodeNet(n);
  const ns = n.netns;
  await run(`${n.name}: creating netns ${ns}`, $`ip netns add ${ns}`);
  await run(`${n.name}: lo up in ${ns}`, $`ip -n ${ns} link set lo up`);
  for (const [veth, inner, br, ip] of [
    [n.vethPub, 'eth0', c.pubBridge, n.publicIp],
    [n.vethInt, 'eth1', c.intBridge, n.internalIp],
  ]) {
    await run(`${n.name}: creating veth ${veth}<->${ns}:${inner}`, $`ip link add ${veth} type veth peer name ${inner} netns ${ns}`);
    noIpv6(veth);
    await run(`${n.name}: attaching ${veth} to ${br}`, $`ip link set ${veth} master ${br} up`);
    await run(`${n.name}: addressing ${ns}:${inner}`, $`ip -n ${ns} addr add ${ip}/24 dev ${inner}`);
    await run(`${n.name}: ${ns}:${inner} up`, $`ip -n ${ns} link set ${inner} up`);
  }
  await run(`${n.name}: default route in ${ns}`, $`ip -n ${ns} route add default via ${c.pubNet}.1`);
}

async function removeNodeNet(n: NodeConfig): Promise<void> {
  if (netnsList().includes(n.netns)) await run(`${n.name}: deleting netns ${n.netns}`, $`ip netns del ${n.netns}`);
  for (const v of [n.vethPub, n.vethInt]) {
    if (linkExists(v)) await run(`${n.name}: deleting veth ${v}`, $`ip link del ${v}`);
  }
}

/** Everything network-shaped this cluster owns, found by name so `down` also cleans up after a
 * crashed or differently-sized `up`. */
export function ownedNetwork(c: ClusterConfig): { netns: string[]; links: string[] } {
  const veth = new RegExp(`^${c.ifPrefix}\\d+[pi]$`);
  const links = readdirSync('/sys/class/net').filter((l) => veth.test(l) || l === c.pubBridge || l === c.intBridge);
  return { netns: netnsList().filter((n) => n.startsWith(c.netnsPrefix)), links };
}

export async function removeNetwork(c: ClusterConfig): Promise<void> {
  const owned = ownedNetwork(c);
  for (const ns of owned.netns) await run(`deleting netns ${ns}`, $`ip netns del ${ns}`);
  // Deleting a namespace takes its veth peers with it, asynchronously; only delete what is left.
  for (const l of owned.links) {
    if (linkExists(l)) await run(`deleting link ${l}`, $`ip link del ${l}`).catch((e) => { if (linkExists(l)) throw e; });
  }
}
