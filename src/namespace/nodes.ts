// The namespace cluster's nodes as `orama namespace …` sees them: the inventory's `cluster` group,
// loaded ONCE, each node with its variables merged as a play sees them (group vars, then host
// vars), checked for what WebRTC needs before anything runs.
import { Inventory } from '../provision/inventory.ts';
import { ProvisionError } from '../provision/errors.ts';
import { ENGINE_NAMES, type EngineName } from '../sfu/engine.ts';
import { TURN_NODE_COUNT } from './decide.ts';

export interface ClusterNode {
  name: string;
  publicIp: string;
  wgIp: string;
  /** Every variable of the node as a play sees it (turn_tls_cert, …). */
  vars: Record<string, unknown>;
}

export interface Cluster {
  inventoryFile: string;
  nodes: ClusterNode[];
  /** The inventory's `sfu_engine`: the SFU engine of a namespace enabled without --sfu-engine and
   * without one recorded (decide.ts chooseEngine); one value for every host of the group. */
  sfuEngine?: EngineName;
}

export function loadCluster(inventoryFile: string): Cluster {
  const inv = Inventory.load(inventoryFile);
  if (!inv.groups.has('cluster')) throw new ProvisionError('the inventory has no group "cluster" (the namespace cluster nodes)', { file: inventoryFile });
  const hosts = inv.select('cluster');
  if (hosts.length < TURN_NODE_COUNT) throw new ProvisionError(`group "cluster" has ${hosts.length} hosts; WebRTC needs at least ${TURN_NODE_COUNT}`, { file: inventoryFile });
  const nodes = hosts.map((h) => {
    const vars = inv.varsOf(h);
    for (const k of ['public_ip', 'wg_ip']) if (!vars[k]) throw new ProvisionError(`host ${h.name} has no "${k}" variable`, inv.placeOfHost(h.name) ?? { file: inventoryFile });
    const by = vars.turn_url_host;
    if (by !== undefined && by !== 'address' && by !== 'name') throw new ProvisionError(`host ${h.name}: turn_url_host is ${JSON.stringify(by)}; it is "address" (turn:IP:PORT, the default) or "name" (turn:${h.name}.ns-NAME.BASE:PORT, for a TURN certificate naming a host)`, inv.placeOfHost(h.name) ?? { file: inventoryFile });
    const engine = vars.sfu_engine;
    if (engine !== undefined && !(ENGINE_NAMES as readonly unknown[]).includes(engine)) {
      throw new ProvisionError(`host ${h.name}: sfu_engine is ${JSON.stringify(engine)}; it is one of ${ENGINE_NAMES.join(', ')} (the SFU's media engine of namespaces enabled without --sfu-engine)`, inv.placeOfVar(h.name, 'sfu_engine'), { key: 'sfu_engine' });
    }
    return { name: h.name, publicIp: String(vars.public_ip), wgIp: String(vars.wg_ip), vars };
  });
  return { inventoryFile, nodes, sfuEngine: inventoryEngine(nodes, inventoryFile) };
}

/** The one `sfu_engine` of the cluster's hosts (a namespace runs one engine on every node), or none. */
function inventoryEngine(nodes: ClusterNode[], file: string): EngineName | undefined {
  const by = new Map<string, string[]>();
  for (const n of nodes) {
    const v = n.vars.sfu_engine === undefined ? '(not set)' : String(n.vars.sfu_engine);
    by.set(v, [...(by.get(v) ?? []), n.name]);
  }
  if (by.size > 1) {
    const list = [...by].map(([v, hosts]) => `${hosts.join(', ')}: ${v}`).join('; ');
    throw new ProvisionError(`sfu_engine differs between the hosts of group "cluster" (${list}): a namespace runs one engine on every node; set it once, as a var of the group "cluster" (or of all)`, { file }, { key: 'sfu_engine' });
  }
  const v = nodes[0]?.vars.sfu_engine;
  return v === undefined ? undefined : (v as EngineName);
}
