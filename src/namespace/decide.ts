// The pure decisions of `orama namespace enable webrtc`: which nodes run TURN, which port blocks
// each node gets, the namespace's firewall set and its SFU engine — from the nodes, the port
// blocks already taken and what the namespace has recorded, nothing else. `enable --plan` and
// `enable` call the same functions with the same rule (the store's first fit), so a plan shows
// exactly the ports apply allocates.
import { ProvisionError } from '../provision/errors.ts';
import type { UfwRule } from '../provision/modules/ufw.ts';
import { PORT_PLAN, firstFreeBlock as storeFirstFreeBlock, type PortAllocation, type PortKind } from '../store/store.ts';
import { DEFAULT_ENGINE } from '../sfu/config.ts';
import { ENGINE_NAMES, type EngineName } from '../sfu/engine.ts';

export const TURN_NODE_COUNT = 2;
/** TURN over TLS listens at 5349 (the standard port) + the namespace's offset in the TURN block. */
export const TURN_TLS_PORT_BASE = 5349;
export const turnTlsPort = (turnPort: number) => TURN_TLS_PORT_BASE + (turnPort - PORT_PLAN.turn_listen.rangeMin);

export interface NodePlan {
  has_turn: boolean;
  sfu_signal_port: number;
  sfu_media_min: number;
  sfu_media_max: number;
  turn_port?: number;
  /** TURN over TLS (TCP), when the node's inventory sets turn_tls_cert and turn_tls_key. */
  turn_tls_port?: number;
  turn_relay_min?: number;
  turn_relay_max?: number;
  /** The namespace's ufw set on this node (namespaceFirewall). */
  firewall: UfwRule[];
}

/** The port blocks a node needs for the namespace. */
export const kindsFor = (hasTurn: boolean): PortKind[] => (hasTurn ? ['sfu_signal', 'sfu_media', 'turn_listen', 'turn_relay'] : ['sfu_signal', 'sfu_media']);

/**
 * The block `enable` would get on a node: the store's own first-fit rule over every block taken
 * on that node in the kind's range (store.allocatePorts uses the same function).
 */
export function firstFreeBlock(taken: PortAllocation[], kind: PortKind): [number, number] {
  const { rangeMin, rangeMax, size } = PORT_PLAN[kind];
  const inRange = taken.filter((a) => a.portEnd >= rangeMin && a.portStart <= rangeMax);
  const start = storeFirstFreeBlock(inRange, size, rangeMin, rangeMax);
  if (start === null) throw new ProvisionError(`no free ${kind} block of ${size} ports left in ${rangeMin}-${rangeMax}`);
  return [start, start + size - 1];
}

/**
 * The namespace's TURN nodes: the ones it already has, else the TURN_NODE_COUNT nodes carrying the
 * fewest TURN relay blocks of other namespaces (capacity), ties by name. Always in inventory
 * order, because rendered configs list the TURN URLs in this order (a re-run must not reorder).
 */
export function chooseTurnNodes(hosts: string[], allocations: PortAllocation[], ns: string): string[] {
  let chosen = [...new Set(allocations.filter((a) => a.namespace === ns && a.kind === 'turn_relay').map((a) => a.node))];
  if (chosen.length !== TURN_NODE_COUNT) {
    const load = (h: string) => allocations.filter((a) => a.kind === 'turn_relay' && a.node === h && a.namespace !== ns).length;
    chosen = [...hosts].sort((a, b) => load(a) - load(b) || a.localeCompare(b)).slice(0, TURN_NODE_COUNT);
  }
  return hosts.filter((h) => chosen.includes(h));
}

export const isEngineName = (v: unknown): v is EngineName => (ENGINE_NAMES as readonly unknown[]).includes(v);

/** `--sfu-engine VALUE` checked: an engine name, or an error naming the flag and the engines. */
export function engineFlag(v: string | undefined): EngineName | undefined {
  if (v === undefined || isEngineName(v)) return v;
  throw new ProvisionError(`--sfu-engine ${JSON.stringify(v)}: must be one of ${ENGINE_NAMES.join(', ')}`);
}

/** Where a namespace's engine came from (what `enable` says when it is not the obvious one). */
export type EngineSource = 'flag' | 'recorded' | 'inventory' | 'default';

/**
 * The namespace's SFU engine: the one asked for (--sfu-engine), else the one it has recorded (a
 * re-run of enable without the flag keeps it, whatever the inventory or the default became
 * since), else the inventory's `sfu_engine` (the cluster's choice for namespaces enabled from now
 * on), else DEFAULT_ENGINE. `enable` records the result before the playbook runs, as it does ports.
 */
export function chooseEngine(ns: string, c: { flag?: EngineName; recorded?: string | null; inventory?: EngineName }): { engine: EngineName; from: EngineSource } {
  if (c.flag) return { engine: c.flag, from: 'flag' };
  if (c.recorded != null) {
    if (!isEngineName(c.recorded)) throw new ProvisionError(`namespace ${ns}: the operator store records SFU engine ${JSON.stringify(c.recorded)}, which this orama does not know (engines: ${ENGINE_NAMES.join(', ')}); choose one with --sfu-engine`);
    return { engine: c.recorded, from: 'recorded' };
  }
  if (c.inventory) return { engine: c.inventory, from: 'inventory' };
  return { engine: DEFAULT_ENGINE, from: 'default' };
}

export interface Decision {
  turnNodes: string[];
  nodes: Record<string, NodePlan>;
  /** Blocks the namespace does not hold yet: what `enable` allocates (predicted here). */
  missing: { node: string; kind: PortKind }[];
}

/**
 * Per-node plan of namespace `ns` on `nodes` (name → WireGuard address, inventory order), given
 * every block taken in the cluster: the namespace's own blocks where it holds them, else the
 * first free block. `tlsNodes`: the nodes whose inventory declares a TURN certificate.
 */
export function decide(ns: string, nodes: { name: string; wgIp: string }[], allocations: PortAllocation[], tlsNodes: Set<string> = new Set()): Decision {
  const turnNodes = chooseTurnNodes(nodes.map((n) => n.name), allocations, ns);
  const plans: Record<string, NodePlan> = {};
  const missing: Decision['missing'] = [];
  for (const n of nodes) {
    const onNode = allocations.filter((a) => a.node === n.name);
    const block = (kind: PortKind): [number, number] => {
      const have = onNode.find((a) => a.namespace === ns && a.kind === kind);
      if (have) return [have.portStart, have.portEnd];
      missing.push({ node: n.name, kind });
      return firstFreeBlock(onNode, kind);
    };
    const hasTurn = turnNodes.includes(n.name);
    const [signal] = block('sfu_signal');
    const [mediaMin, mediaMax] = block('sfu_media');
    const p: NodePlan = { has_turn: hasTurn, sfu_signal_port: signal, sfu_media_min: mediaMin, sfu_media_max: mediaMax, firewall: [] };
    if (hasTurn) {
      p.turn_port = block('turn_listen')[0];
      [p.turn_relay_min, p.turn_relay_max] = block('turn_relay');
      if (tlsNodes.has(n.name)) p.turn_tls_port = turnTlsPort(p.turn_port);
    }
    plans[n.name] = p;
  }
  namespaceFirewall(plans, Object.fromEntries(nodes.map((n) => [n.name, n.wgIp])));
  return { turnNodes, nodes: plans, missing };
}

/**
 * The namespace's ufw set on every node — its part of the TURN wall on the WireGuard mesh, where
 * every namespace shares the same three addresses, so ports (and source ports) are what tell one
 * namespace's traffic from another's:
 * - public: the TURN listen port (udp, tcp; TLS when configured); the gateway has no port of its
 *   own (a Unix socket behind the cluster's HTTPS front, whose 443 is in the node-base set);
 * - wg0: the SFU's signaling port from the cluster's gateways (the nodes' WireGuard addresses);
 *   the SFU's media range only from this namespace's TURN relay ports; on a TURN node, its relay
 *   range only from this namespace's SFU media ports.
 * Nothing else of the namespace is reachable; a rule that leaves this set closes its port.
 * Traffic a node sends to its own WireGuard address never crosses wg0 (it is delivered over lo):
 * the turn role's owner-match table covers that path.
 */
export function namespaceFirewall(nodes: Record<string, NodePlan>, wgIps: Record<string, string>): void {
  const names = Object.keys(nodes);
  for (const n of names) {
    const p = nodes[n];
    const own = wgIps[n];
    const rules: UfwRule[] = [];
    if (p.turn_port !== undefined) rules.push({ port: String(p.turn_port), proto: 'udp' }, { port: String(p.turn_port), proto: 'tcp' });
    if (p.turn_tls_port !== undefined) rules.push({ port: String(p.turn_tls_port), proto: 'tcp' });
    for (const m of names) {
      if (m === n) continue; // the node's own traffic arrives over lo
      rules.push({ interface: 'wg0', proto: 'tcp', from: wgIps[m], to: own, port: String(p.sfu_signal_port) });
      const q = nodes[m];
      if (q.turn_relay_min !== undefined) {
        rules.push({ interface: 'wg0', proto: 'udp', from: wgIps[m], from_port: `${q.turn_relay_min}:${q.turn_relay_max}`, to: own, port: `${p.sfu_media_min}:${p.sfu_media_max}` });
      }
      if (p.turn_relay_min !== undefined) {
        rules.push({ interface: 'wg0', proto: 'udp', from: wgIps[m], from_port: `${q.sfu_media_min}:${q.sfu_media_max}`, to: own, port: `${p.turn_relay_min}:${p.turn_relay_max}` });
      }
    }
    p.firewall = rules;
  }
}

/** The namespace's DNS zone, served by every node's Knot (roles/dns_zone), and its gateway's
 * name behind the HTTPS front: https://ns-NAME.BASE/. */
export const zoneName = (ns: string, baseDomain: string) => `ns-${ns}.${baseDomain}`;

/** A node's own name in a namespace's zone (the zone's NS glue; TURN URLs by name). */
export const nodeHostName = (node: string, zone: string) => `${node}.${zone}`;

/** The zone (and front host name) a namespace was enabled with, from its DNS records in the operator store. */
export const storedZone = (ns: string, records: { name: string }[]) => zoneName(ns, records.map((r) => r.name.split(`ns-${ns}.`)[1]).find(Boolean) ?? '');

/**
 * What the zone says: turn.ns-NS.BASE → the TURN nodes' public addresses (what the gateway's TURN
 * URLs can name), ns-NS.BASE → every node's (each runs a gateway). The operator store keeps the
 * same records.
 */
export function dnsRecords(ns: string, baseDomain: string, d: Decision, nodes: { name: string; publicIp: string }[]): { name: string; type: 'A'; value: string; ttl: number }[] {
  const zone = zoneName(ns, baseDomain);
  const ip = (n: string) => nodes.find((x) => x.name === n)!.publicIp;
  return [
    ...d.turnNodes.map((n) => ({ name: `turn.${zone}`, type: 'A' as const, value: ip(n), ttl: 60 })),
    ...nodes.map((n) => ({ name: zone, type: 'A' as const, value: n.publicIp, ttl: 60 })),
  ];
}
