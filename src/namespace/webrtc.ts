// `orama namespace enable|disable webrtc`, as a short script: load the cluster's nodes from the
// inventory once, decide (pure, decide.ts), persist the decisions, apply the playbook with the
// typed vars (vars.ts), record what now exists. Decisions are stored BEFORE the playbook runs, so
// a failed or interrupted enable re-runs with the same secret and ports and converges; `--plan`
// decides with the same rule, stores nothing and changes nothing.
import { randomBytes } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apply, plan } from '../provision/engine.ts';
import type { RunResult } from '../provision/runner.ts';
import { Redactor } from '../provision/secret.ts';
import { ProvisionError } from '../provision/errors.ts';
import { PORT_PLAN, type Store } from '../store/store.ts';
import { Secret } from '../secret/secret.ts';
import { generateJwtKey } from '../webrtc/tokens.ts';
import { NAMESPACE_RE, baseDomainProblem } from '../webrtc/names.ts';
import { buildArtifacts, enableArtifacts } from './artifacts.ts';
import { TURN_NODE_COUNT, chooseEngine, chooseTurnNodes, decide, dnsRecords, engineFlag, zoneName } from './decide.ts';
import { loadCluster, type Cluster } from './nodes.ts';
import { checkFrontCertificate, turnTlsMaterial } from './tls.ts';
import { TURN_TTL, enableVars, seedUser, webrtcNames, webrtcUsers } from './vars.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const playbook = (name: string) => join(root, 'playbooks', name);

export interface WebrtcOptions {
  namespace: string;
  inventory: string;
  store: Store;
  baseDomain: string;
  plan?: boolean;
  json?: boolean;
  out?: NodeJS.WritableStream;
  acceptNewHostKeys?: boolean;
  /** Fact prefetch (default on); off for the batched-vs-unbatched plan comparison. */
  batch?: boolean;
  /** enable: `--sfu-engine` (decide.ts chooseEngine); absent, the namespace keeps its own. */
  sfuEngine?: string;
}

export function checkNamespace(ns: string) {
  if (!NAMESPACE_RE.test(ns)) throw new ProvisionError(`--namespace "${ns}": must match ${NAMESPACE_RE} (lowercase letters, digits, dashes)`);
}

/** The CLI checks the base domain where it comes in (environment.ts); a caller of enable or disable is checked here. */
function checkBaseDomain(domain: string) {
  const problem = baseDomainProblem(domain);
  if (problem) throw new ProvisionError(`base domain ${JSON.stringify(domain)}: not a DNS name: ${problem}`);
}

function run(o: WebrtcOptions, name: string, extraVars: object): Promise<RunResult> {
  // Typed vars (vars.ts) go to the engine as plain variables.
  const opts = { playbook: playbook(name), inventory: o.inventory, extraVars: extraVars as Record<string, unknown>, json: o.json, out: o.out, acceptNewHostKeys: o.acceptNewHostKeys, batch: o.batch, redactor: new Redactor() };
  return o.plan ? plan(opts) : apply(opts);
}

/** The decision for the namespace now; unless a plan, its config, engine and every missing block are stored first. */
async function decideAndPersist(o: WebrtcOptions, cluster: Cluster) {
  const ns = o.namespace;
  const names = cluster.nodes.map((n) => n.name);
  let allocations = await o.store.listAllocations();
  checkFrontCertificate(cluster, zoneName(ns, o.baseDomain));
  const tls = turnTlsMaterial(cluster, chooseTurnNodes(names, allocations, ns));
  let d = decide(ns, cluster.nodes, allocations, new Set(tls.keys()));
  const cfg = await o.store.getWebrtcConfig(ns);
  const engine = chooseEngine(ns, { flag: engineFlag(o.sfuEngine), recorded: cfg?.sfuEngine, inventory: cluster.sfuEngine });
  const secret = cfg?.turnSecret.reveal() ?? randomBytes(32).toString('base64url');
  let jwtKey = await o.store.getJwtKey(ns);
  if (!o.plan) {
    if (!cfg || cfg.sfuEngine !== engine.engine) {
      await o.store.putWebrtcConfig({
        namespace: ns, enabled: cfg?.enabled ?? false, turnSecret: new Secret(secret), sfuNodeCount: cfg?.sfuNodeCount ?? names.length,
        turnNodeCount: cfg?.turnNodeCount ?? TURN_NODE_COUNT, turnTtl: cfg?.turnTtl ?? TURN_TTL, sfuEngine: engine.engine,
      });
    }
    if (!jwtKey) jwtKey = await o.store.putJwtKeyIfAbsent(generateJwtKey(ns, 'HS256'));
    // The store allocates with the same first-fit rule; a concurrent enable may have taken the
    // predicted block, so decide again from what the store now holds.
    for (const m of d.missing) {
      const { rangeMin, rangeMax, size } = PORT_PLAN[m.kind];
      await o.store.allocatePorts(m.node, ns, m.kind, size, rangeMin, rangeMax);
    }
    allocations = await o.store.listAllocations();
    d = decide(ns, cluster.nodes, allocations, new Set(tls.keys()));
    if (d.missing.length) throw new ProvisionError(`namespace ${ns}: port blocks still missing after allocation: ${d.missing.map((m) => `${m.node}/${m.kind}`).join(', ')}`);
  }
  return { decision: d, secret, jwtKey, tls, engine: engine.engine, engineNote: engineNote(ns, engine, cfg?.sfuEngine ?? null, cluster.sfuEngine) };
}

/** What enable says about the engine when it is not what the operator may assume (else ''). */
function engineNote(ns: string, c: ReturnType<typeof chooseEngine>, recorded: string | null, inventory: string | undefined): string {
  if (c.from === 'flag' && recorded && recorded !== c.engine) return `namespace ${ns}: SFU engine ${recorded} -> ${c.engine} (--sfu-engine): every node's SFU restarts (calls drain and join again, on the new engine)`;
  if (c.from === 'recorded' && inventory && inventory !== c.engine) return `namespace ${ns}: keeps its SFU engine ${c.engine}; the inventory's sfu_engine ${inventory} is for namespaces enabled from now on (--sfu-engine ${inventory} switches this one)`;
  return '';
}

export async function enableWebrtc(o: WebrtcOptions): Promise<RunResult> {
  checkNamespace(o.namespace);
  checkBaseDomain(o.baseDomain);
  engineFlag(o.sfuEngine);
  const ns = o.namespace;
  const cluster = loadCluster(o.inventory);
  // The worker's absence is said before anything is decided or stored.
  const artifacts = await enableArtifacts();
  const { decision, secret, jwtKey, tls, engine, engineNote } = await decideAndPersist(o, cluster);
  const vars = enableVars({
    namespace: ns, baseDomain: o.baseDomain, nodes: cluster.nodes, decision, turnSecret: secret, jwtKey,
    apiKeys: await o.store.exportApiKeys(ns), tls, artifacts, sfuEngine: engine,
  });
  if (engineNote && !o.json) (o.out ?? process.stdout).write(`${engineNote}\n`);
  const result = await run(o, 'webrtc-enable.yml', vars);
  if (!o.plan && !result.failed) {
    await o.store.putWebrtcConfig({ namespace: ns, enabled: true, turnSecret: new Secret(secret), sfuNodeCount: cluster.nodes.length, turnNodeCount: TURN_NODE_COUNT, turnTtl: TURN_TTL, sfuEngine: engine });
    await o.store.setDnsRecords(ns, dnsRecords(ns, o.baseDomain, decision, cluster.nodes));
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
  loadCluster(o.inventory);
  const doc = { ...seedUser(), apiKeys: await o.store.exportApiKeys(o.namespace) };
  return run(o, 'webrtc-apikeys.yml', { namespace: o.namespace, artifacts: await buildArtifacts(), seed_document: new Secret(JSON.stringify(doc)) });
}

/**
 * Whether the operator store knows anything of the namespace's WebRTC (its config, a port block,
 * a DNS record). `disable` of a namespace it does not know does nothing (the CLI says so), unless
 * forced: then it removes whatever the nodes still have (units the inspector reports as orphans).
 */
export async function webrtcKnown(store: Store, ns: string): Promise<boolean> {
  return Boolean(await store.getWebrtcConfig(ns)) || (await store.listAllocations({ namespace: ns })).length > 0 || (await store.listDnsRecords(ns)).length > 0;
}

export async function disableWebrtc(o: WebrtcOptions): Promise<RunResult> {
  checkNamespace(o.namespace);
  checkBaseDomain(o.baseDomain);
  loadCluster(o.inventory);
  const result = await run(o, 'webrtc-disable.yml', { namespace: o.namespace, base_domain: o.baseDomain, artifacts: await buildArtifacts(), webrtc_users: webrtcUsers(o.namespace), webrtc_names: webrtcNames(o.namespace), seed_user: seedUser(), dns_zone: { name: zoneName(o.namespace, o.baseDomain) } });
  if (!o.plan && !result.failed) {
    // Nodes first, records after: a failed disable leaves the records that let a re-run finish.
    await o.store.releasePorts(o.namespace);
    await o.store.deleteDnsRecords(o.namespace);
    for (const r of await o.store.listRooms(o.namespace)) await o.store.deleteRoom(o.namespace, r.roomId);
    await o.store.deleteWebrtcConfig(o.namespace);
  }
  return result;
}
