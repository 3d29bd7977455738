// `orama namespace enable|disable webrtc`: decides (TURN secret, ports, which nodes, DNS) and
// drives the engine with playbooks/webrtc-enable.yml / webrtc-disable.yml. Decisions are stored
// BEFORE the playbook runs, so a failed or interrupted enable re-runs with the same secret and
// ports and converges; `--plan` stores nothing and changes nothing.
import { X509Certificate, createHmac, createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Inventory, type Host } from '../provision/inventory.ts';
import { apply, plan } from '../provision/engine.ts';
import type { RunResult } from '../provision/runner.ts';
import { Redactor } from '../provision/secret.ts';
import { ProvisionError } from '../provision/errors.ts';
import { PORT_PLAN, firstFreeBlock as storeFirstFreeBlock, type PortAllocation, type PortKind, type Store } from '../store/store.ts';
import { Secret } from '../secret/secret.ts';
import { generateJwtKey } from '../gateway/jwt.ts';
import type { UfwRule } from '../provision/modules/ufw.ts';
import { NAMESPACE_RE, serviceUser } from '../webrtc/names.ts';
import { buildArtifacts } from './artifacts.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export { NAMESPACE_RE };
export const TURN_NODE_COUNT = 2;
/** The gateway port is derived from the SFU signaling block: 30000+k → 31000+k. */
export const GATEWAY_PORT_OFFSET = 1000;

export interface NodePlan {
  has_turn: boolean;
  sfu_signal_port: number;
  sfu_media_min: number;
  sfu_media_max: number;
  gateway_port: number;
  turn_port?: number;
  /** TURN over TLS (TCP), when the node's inventory sets turn_tls_cert and turn_tls_key. */
  turn_tls_port?: number;
  turn_relay_min?: number;
  turn_relay_max?: number;
  /** The namespace's ufw set on this node (namespaceFirewall). */
  firewall: UfwRule[];
}

export interface WebrtcOptions {
  namespace: string;
  inventory: string;
  store: Store;
  baseDomain: string;
  plan?: boolean;
  json?: boolean;
  out?: NodeJS.WritableStream;
  acceptNewHostKeys?: boolean;
}

function checkNamespace(ns: string) {
  if (!NAMESPACE_RE.test(ns)) throw new ProvisionError(`--namespace "${ns}": must match ${NAMESPACE_RE} (lowercase letters, digits, dashes)`);
}

function clusterHosts(inventoryFile: string): Host[] {
  const inv = Inventory.load(inventoryFile);
  if (!inv.groups.has('cluster')) throw new ProvisionError('the inventory has no group "cluster" (the namespace cluster nodes)', { file: inventoryFile });
  const hosts = inv.select('cluster');
  if (hosts.length < TURN_NODE_COUNT) throw new ProvisionError(`group "cluster" has ${hosts.length} hosts; WebRTC needs at least ${TURN_NODE_COUNT}`, { file: inventoryFile });
  for (const h of hosts) for (const k of ['public_ip', 'wg_ip']) if (!h.vars[k]) throw new ProvisionError(`host ${h.name} has no "${k}" variable`, inv.placeOfHost(h.name) ?? { file: inventoryFile });
  return hosts;
}

/**
 * The block `enable` would get on a node, for `--plan`: the store's own first-fit rule over every
 * block taken on that node (store.allocatePorts uses the same function), so a plan shows exactly
 * the ports apply then allocates.
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

interface Decision {
  secret: string;
  existing: boolean;
  nodes: Record<string, NodePlan>;
  turnNodes: string[];
}

/** Same secret and ports as before if the namespace already has them; otherwise fresh ones. */
async function decide(o: WebrtcOptions, hosts: Host[], persist: boolean): Promise<Decision> {
  const ns = o.namespace;
  const cfg = await o.store.getWebrtcConfig(ns);
  const secret = cfg?.turnSecret.reveal() ?? randomBytes(32).toString('base64url');
  const all = await o.store.listAllocations();
  const mine = all.filter((a) => a.namespace === ns);
  const turnNodes = chooseTurnNodes(hosts.map((h) => h.name), all, ns);
  if (persist && !cfg) {
    await o.store.putWebrtcConfig({ namespace: ns, enabled: false, turnSecret: new Secret(secret), sfuNodeCount: hosts.length, turnNodeCount: TURN_NODE_COUNT, turnTtl: 600 });
  }
  const nodes: Record<string, NodePlan> = {};
  for (const h of hosts) {
    const block = async (kind: PortKind): Promise<[number, number]> => {
      const have = mine.find((a) => a.node === h.name && a.kind === kind);
      if (have) return [have.portStart, have.portEnd];
      if (!persist) return firstFreeBlock(all.filter((a) => a.node === h.name), kind);
      const { rangeMin, rangeMax, size } = PORT_PLAN[kind];
      const a = await o.store.allocatePorts(h.name, ns, kind, size, rangeMin, rangeMax);
      return [a.portStart, a.portEnd];
    };
    const [signal] = await block('sfu_signal');
    const [mediaMin, mediaMax] = await block('sfu_media');
    const p: NodePlan = { has_turn: turnNodes.includes(h.name), sfu_signal_port: signal, sfu_media_min: mediaMin, sfu_media_max: mediaMax, gateway_port: signal + GATEWAY_PORT_OFFSET, firewall: [] };
    if (p.has_turn) {
      p.turn_port = (await block('turn_listen'))[0];
      [p.turn_relay_min, p.turn_relay_max] = await block('turn_relay');
    }
    nodes[h.name] = p;
  }
  return { secret, existing: Boolean(cfg), nodes, turnNodes };
}

/**
 * The namespace's ufw set on every node — its part of the TURN wall on the WireGuard mesh, where
 * every namespace shares the same three addresses, so ports (and source ports) are what tell one
 * namespace's traffic from another's:
 * - public: the TURN listen port (udp, tcp; TLS when configured) and the gateway port;
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
    rules.push({ port: String(p.gateway_port), proto: 'tcp' });
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

/** TURN over TLS listens at 5349 (the standard port) + the namespace's offset in the TURN block. */
export const TURN_TLS_PORT_BASE = 5349;
export const turnTlsPort = (turnPort: number) => TURN_TLS_PORT_BASE + (turnPort - PORT_PLAN.turn_listen.rangeMin);

/**
 * TURN over TLS is declared in the inventory: `turn_tls_cert` and `turn_tls_key` (PEM files on the
 * controller, relative to the inventory file) on a TURN node — usually as group vars of
 * `cluster`. Checked here, before anything runs: both or neither, readable, a certificate that
 * has not expired and the key that belongs to it. Returns the material of the TURN nodes that have it.
 */
export function turnTlsMaterial(inventoryFile: string, hosts: Host[], turnNodes: string[]): Map<string, { cert: string; key: Secret }> {
  const inv = Inventory.load(inventoryFile);
  const out = new Map<string, { cert: string; key: Secret }>();
  for (const h of hosts) {
    const vars = inv.varsOf(h);
    const certPath = vars.turn_tls_cert ?? undefined;
    const keyPath = vars.turn_tls_key ?? undefined;
    if (certPath === undefined && keyPath === undefined) continue;
    const where = `host ${h.name}`;
    if (typeof certPath !== 'string' || typeof keyPath !== 'string') throw new ProvisionError(`${where}: turn_tls_cert and turn_tls_key go together (file paths); only ${certPath === undefined ? 'turn_tls_key' : 'turn_tls_cert'} is set`, { file: inventoryFile });
    if (!turnNodes.includes(h.name)) continue;
    const read = (p: string, v: string) => {
      const file = resolve(dirname(inventoryFile), p);
      try { return readFileSync(file, 'utf8'); } catch (e) { throw new ProvisionError(`${where}: ${v}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: inventoryFile }); }
    };
    const certPem = read(certPath, 'turn_tls_cert');
    const keyPem = read(keyPath, 'turn_tls_key');
    let cert: X509Certificate;
    try { cert = new X509Certificate(certPem); } catch { throw new ProvisionError(`${where}: turn_tls_cert: ${certPath} is not a PEM certificate`, { file: inventoryFile }); }
    if (Date.parse(cert.validTo) < Date.now()) throw new ProvisionError(`${where}: turn_tls_cert: ${certPath} expired on ${cert.validTo}`, { file: inventoryFile });
    let matches = false;
    try { matches = cert.checkPrivateKey(createPrivateKey(keyPem)); } catch { throw new ProvisionError(`${where}: turn_tls_key: ${keyPath} is not a PEM private key`, { file: inventoryFile }); }
    if (!matches) throw new ProvisionError(`${where}: turn_tls_key: ${keyPath} is not the key of the certificate ${certPath}`, { file: inventoryFile });
    out.set(h.name, { cert: certPem, key: new Secret(keyPem) });
  }
  return out;
}

/** The namespace cluster's rqlite, on every node's WireGuard address (roles/rqlite). */
const rqliteUrls = (hosts: Host[]) => hosts.map((h) => `http://${h.vars.wg_ip}:4001`);

/** The namespace's service users on every node (roles turn, sfu, gateway; removed by disable). */
const webrtcUsers = (ns: string) => ({ turn: serviceUser('turn', ns), sfu: serviceUser('sfu', ns), gateway: serviceUser('gateway', ns) });

function engineOut(o: WebrtcOptions) {
  return { json: o.json, out: o.out, acceptNewHostKeys: o.acceptNewHostKeys, redactor: new Redactor() };
}

export async function enableWebrtc(o: WebrtcOptions): Promise<RunResult> {
  checkNamespace(o.namespace);
  const hosts = clusterHosts(o.inventory);
  const persist = !o.plan;
  const d = await decide(o, hosts, persist);
  const ns = o.namespace;
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const tls = turnTlsMaterial(o.inventory, hosts, d.turnNodes);
  for (const n of tls.keys()) {
    const p = d.nodes[n];
    p.turn_tls_port = turnTlsPort(p.turn_port!);
  }
  namespaceFirewall(d.nodes, Object.fromEntries(hosts.map((h) => [h.name, String(h.vars.wg_ip)])));
  const turnUrls = d.turnNodes.flatMap((n) => {
    const ip = byName.get(n)!.vars.public_ip;
    const { turn_port: port, turn_tls_port: tlsPort } = d.nodes[n];
    return [`turn:${ip}:${port}?transport=udp`, `turn:${ip}:${port}?transport=tcp`, ...(tlsPort ? [`turns:${ip}:${tlsPort}?transport=tcp`] : [])];
  });
  let jwtKey = await o.store.getJwtKey(ns);
  if (!jwtKey && persist) jwtKey = await o.store.putJwtKeyIfAbsent(generateJwtKey(ns, 'HS256'));
  const jwtVerify = jwtKey ? (jwtKey.alg === 'HS256' ? jwtKey.signingKey.reveal() : jwtKey.publicKey!) : '(known after apply)';
  // The SFU trusts the gateway by a key derived from the TURN secret: nothing more to store.
  const internalKey = createHmac('sha256', d.secret).update(`orama-sfu-internal:${ns}`).digest('base64url');
  const wgIp = (n: string) => String(byName.get(n)!.vars.wg_ip);
  const seed = {
    urls: rqliteUrls(hosts),
    config: { namespace: ns, turn_secret: d.secret, sfu_node_count: hosts.length, turn_node_count: TURN_NODE_COUNT, turn_ttl: 600 },
    jwtKey: jwtKey && { alg: jwtKey.alg, kid: jwtKey.kid, signing_key: jwtKey.signingKey.reveal(), public_key: jwtKey.publicKey },
    apiKeys: await o.store.exportApiKeys(ns),
  };
  const artifacts = await buildArtifacts();
  const extraVars = {
    namespace: ns,
    base_domain: o.baseDomain,
    webrtc_nodes: d.nodes,
    webrtc_users: webrtcUsers(ns),
    turn_urls: turnUrls,
    turn_relay_ips: d.turnNodes.map(wgIp),
    sfu_ips: hosts.map((h) => String(h.vars.wg_ip)),
    sfu_nodes: hosts.map((h) => ({ node: h.name, ip: String(h.vars.wg_ip), signal_port: d.nodes[h.name].sfu_signal_port })),
    rqlite_urls: seed.urls,
    turn_ttl: 600,
    jwt_alg: jwtKey?.alg ?? 'HS256',
    artifacts,
    turn_secret: new Secret(d.secret),
    internal_key: new Secret(internalKey),
    jwt_verify_key: new Secret(jwtVerify),
    seed_document: new Secret(JSON.stringify(seed)),
    turn_tls: Object.fromEntries(tls),
  };
  const opts = { playbook: join(root, 'playbooks', 'webrtc-enable.yml'), inventory: o.inventory, extraVars, ...engineOut(o) };
  if (o.plan) return plan(opts);
  const result = await apply(opts);
  if (!result.failed) {
    await o.store.putWebrtcConfig({ namespace: ns, enabled: true, turnSecret: new Secret(d.secret), sfuNodeCount: hosts.length, turnNodeCount: TURN_NODE_COUNT, turnTtl: 600 });
    await o.store.setDnsRecords(ns, d.turnNodes.map((n) => ({ name: `turn.ns-${ns}.${o.baseDomain}`, type: 'A' as const, value: String(byName.get(n)!.vars.public_ip), ttl: 60 })));
  }
  return result;
}

/**
 * Copies the namespace's API key records (hashes and revocations, never keys) from the operator's
 * store into the cluster's rqlite, so the nodes' gateways accept and refuse what the operator
 * created and revoked. `orama apikey create|revoke` call it when the namespace has WebRTC.
 */
export async function syncApiKeys(o: WebrtcOptions): Promise<RunResult> {
  checkNamespace(o.namespace);
  const hosts = clusterHosts(o.inventory);
  const doc = { urls: rqliteUrls(hosts), apiKeys: await o.store.exportApiKeys(o.namespace) };
  const extraVars = { namespace: o.namespace, artifacts: await buildArtifacts(), seed_document: new Secret(JSON.stringify(doc)) };
  const opts = { playbook: join(root, 'playbooks', 'webrtc-apikeys.yml'), inventory: o.inventory, extraVars, ...engineOut(o) };
  return o.plan ? plan(opts) : apply(opts);
}

export async function disableWebrtc(o: WebrtcOptions): Promise<RunResult> {
  checkNamespace(o.namespace);
  const hosts = clusterHosts(o.inventory);
  const extraVars = { namespace: o.namespace, rqlite_urls: rqliteUrls(hosts), artifacts: await buildArtifacts(), webrtc_users: webrtcUsers(o.namespace) };
  const opts = { playbook: join(root, 'playbooks', 'webrtc-disable.yml'), inventory: o.inventory, extraVars, ...engineOut(o) };
  if (o.plan) return plan(opts);
  const result = await apply(opts);
  if (!result.failed) {
    // Nodes first, records after: a failed disable leaves the records that let a re-run finish.
    await o.store.releasePorts(o.namespace);
    await o.store.deleteDnsRecords(o.namespace);
    for (const r of await o.store.listRooms(o.namespace)) await o.store.deleteRoom(o.namespace, r.roomId);
    await o.store.deleteWebrtcConfig(o.namespace);
  }
  return result;
}
