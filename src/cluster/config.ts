// The shape of one test cluster: its name decides every host-side name and address range, so a
// second cluster (another name) can coexist with the default one without touching it.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { baseDomainProblem } from '../webrtc/names.ts';

export interface ClusterConfig {
  name: string;
  nodes: number;
  stateDir: string;            // overlays, keys, pidfiles of this cluster
  cacheDir: string;            // image cache, shared by all clusters
  pubBridge: string;
  intBridge: string;
  pubNet: string;              // first three octets, e.g. "10.77.0"
  intNet: string;
  ifPrefix: string;            // host-side veth names: `${ifPrefix}${i}p`, `${ifPrefix}${i}i`
  netnsPrefix: string;
  tag: string;                 // iptables comment and cgroup prefix: what `down` removes
  /** The domain the front's certificate names (*.baseDomain); inventory/environments/local.yml agrees. */
  baseDomain: string;
}

export interface NodeConfig {
  index: number;               // 1-based
  name: string;                // node1 …
  publicIp: string;
  internalIp: string;
  wgIp: string;                // configured later by the node-base playbook, not by the harness
  netns: string;
  vethPub: string;
  vethInt: string;
  dir: string;                 // <stateDir>/<name>: upper, work, root (merged), pidfiles, log
  root: string;
}

export interface ClusterOptions {
  name?: string;
  nodes?: number;
}

export function clusterConfig(opts: ClusterOptions = {}): ClusterConfig {
  const name = opts.name ?? process.env.ORAMA_CLUSTER_NAME ?? 'default';
  if (!/^[a-z][a-z0-9]{0,11}$/.test(name)) {
    throw new Error(`cluster name "${name}" must be 1–12 lowercase letters/digits (it becomes part of interface names)`);
  }
  const baseDomain = process.env.ORAMA_CLUSTER_BASE_DOMAIN ?? 'orama.test';
  const domainProblem = baseDomainProblem(baseDomain);
  if (domainProblem) throw new Error(`ORAMA_CLUSTER_BASE_DOMAIN ${JSON.stringify(baseDomain)}: not a DNS name: ${domainProblem}`);
  const nodes = opts.nodes ?? Number(process.env.ORAMA_CLUSTER_NODES ?? 3);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) throw new Error(`cluster size must be 1–9 nodes, got ${nodes}`);
  const isDefault = name === 'default';
  // Other clusters get their own /24s, derived from the name so repeated runs agree; the env vars
  // exist for the rare collision.
  const octet = isDefault ? 0 : 1 + (createHash('sha256').update(name).digest()[0] % 250);
  const short = isDefault ? 'otc' : `o${name.slice(0, 6)}`;
  return {
    name,
    nodes,
    stateDir: join(process.env.ORAMA_CLUSTER_DIR ?? '/var/lib/orama-test-cluster', name),
    cacheDir: process.env.ORAMA_CACHE_DIR ?? '/var/cache/orama-provision',
    pubBridge: isDefault ? 'pub' : `${short}pub`,
    intBridge: isDefault ? 'int' : `${short}int`,
    pubNet: process.env.ORAMA_CLUSTER_PUB_NET ?? `10.77.${octet}`,
    intNet: process.env.ORAMA_CLUSTER_INT_NET ?? `10.78.${octet}`,
    ifPrefix: short,
    netnsPrefix: `otc-${name}-`,
    tag: `orama-test-cluster:${name}`,
    baseDomain,
  };
}

export function nodeConfigs(c: ClusterConfig): NodeConfig[] {
  return Array.from({ length: c.nodes }, (_, k) => nodeConfig(c, k + 1));
}

export function nodeConfig(c: ClusterConfig, index: number): NodeConfig {
  if (!Number.isInteger(index) || index < 1 || index > c.nodes) {
    throw new Error(`no node ${index} in cluster "${c.name}" (nodes are 1–${c.nodes})`);
  }
  const name = `node${index}`;
  const dir = join(c.stateDir, name);
  return {
    index,
    name,
    publicIp: `${c.pubNet}.${10 + index}`,
    internalIp: `${c.intNet}.${10 + index}`,
    wgIp: `10.0.0.${index}`,
    netns: `${c.netnsPrefix}${name}`,
    vethPub: `${c.ifPrefix}${index}p`,
    vethInt: `${c.ifPrefix}${index}i`,
    dir,
    root: join(dir, 'root'),
  };
}

export const keyPath = (c: ClusterConfig) => join(c.stateDir, 'id_ed25519');
/** The cluster's own CA and the front's certificate (src/secret/ca.ts), kept with its state. */
export const tlsDir = (c: ClusterConfig) => join(c.stateDir, 'tls');
export const knownHostsPath = (c: ClusterConfig) => join(c.stateDir, 'known_hosts');
