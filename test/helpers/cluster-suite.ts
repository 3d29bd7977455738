// What every suite on the default test cluster starts with: the cluster up, node-base applied,
// and `orama` bound to the operator's state and the cluster's inventory — one source of truth per
// cluster, so a suite's namespaces never collide with ports another namespace (bin/demo's) holds.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensureClusterUp, type ClusterInfo } from '../../src/cluster/cluster.ts';
import { nodeConfig } from '../../src/cluster/config.ts';
import { orama as oramaCli, provision, type Run } from './cli.ts';

export interface ClusterSuite {
  cluster: ClusterInfo;
  /** The operator's SQLite state (ORAMA_STATE, default /var/lib/orama/state.db). */
  state: string;
  orama: (...args: string[]) => Promise<Run>;
  /** node-base's apply (assert its code: a suite on unprepared nodes tests nothing). */
  base: Run;
}

export async function clusterSuite(): Promise<ClusterSuite> {
  const cluster = await ensureClusterUp();
  const state = process.env.ORAMA_STATE ?? '/var/lib/orama/state.db';
  mkdirSync(dirname(state), { recursive: true });
  const env = { ORAMA_STATE: state, ORAMA_INVENTORY: cluster.inventory };
  const base = await provision(['apply', 'playbooks/node-base.yml', '-i', cluster.inventory]);
  return { cluster, state, orama: (...a: string[]) => oramaCli(a, env), base };
}

/**
 * The browsers' network: a netns with one veth on the cluster's public bridge at .<octet>, no
 * default route (so it reaches only the nodes' public addresses), and as its resolver the first
 * node's Knot (/etc/netns/NAME/resolv.conf, which `ip netns exec` puts in place of
 * /etc/resolv.conf): names like ns-NAME.orama.test resolve as the cluster's DNS answers them.
 * `sh` runs a host shell command; `remove` deletes what this made (the veth goes with it).
 */
export function clientNetns(cluster: ClusterInfo, prefix: string, octet: number): { netns: string; nameserver: string; sh: (cmd: string) => string; remove: () => void } {
  const c = cluster.config;
  const netns = `${prefix}-${process.pid}`;
  const veth = `${prefix}${process.pid % 100000}`;
  const nameserver = nodeConfig(c, 1).publicIp;
  const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
  // IPv4 only: IPv6 duplicate address detection would finish a second or two after the link is
  // up, and Chromium aborts requests in flight with ERR_NETWORK_CHANGED when addresses change.
  sh(`ip netns add ${netns} && ip netns exec ${netns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 && ip link add ${veth}h type veth peer name ${veth}n && ip link set ${veth}n netns ${netns} && ip netns exec ${netns} sysctl -qw net.ipv6.conf.${veth}n.disable_ipv6=1 && ip link set ${veth}h master ${c.pubBridge} up && ip -n ${netns} addr add ${c.pubNet}.${octet}/24 dev ${veth}n && ip -n ${netns} link set ${veth}n up && ip -n ${netns} link set lo up`);
  mkdirSync(`/etc/netns/${netns}`, { recursive: true });
  writeFileSync(`/etc/netns/${netns}/resolv.conf`, `nameserver ${nameserver}\noptions timeout:2 attempts:2\n`);
  return { netns, nameserver, sh, remove: () => { rmSync(`/etc/netns/${netns}`, { recursive: true, force: true }); sh(`ip link del ${veth}h 2>/dev/null; ip netns del ${netns} 2>/dev/null; true`); } };
}
