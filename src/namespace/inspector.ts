// `orama inspector`: cross-node checks, each a finding with a severity and a one-line fix, read
// from the nodes by the same probe as the monitor (probe-main.ts, over SSH; nothing changes):
//   sfu-coverage      every node's SFU answers (per namespace)
//   turn-redundancy   two TURN nodes allocate
//   units             the namespace units on each node ↔ the operator store's port blocks
//   firewall          each node's ufw rules ↔ the namespace's desired set; a rule in no known set
//                     (an extra open port) is a finding
//   dns               the operator store's DNS records ↔ the TURN nodes (records only: no DNS
//                     server answers them yet)
//   cluster-state     each node's cluster_state.json ↔ the operator store
//   turn-secret       the secret in each TURN node's coturn config ↔ the cluster database ↔ the
//                     operator store, compared by sha256 (the secret never leaves a node)
//   gateway-credential a credential from each gateway is accepted by each TURN node
// An unreachable node is a finding, not a crash.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Inventory } from '../provision/inventory.ts';
import { parseUserRules, ruleKey, expandRules, keyToSpec } from '../provision/modules/ufw.ts';
import type { Store } from '../store/store.ts';
import { mintToken } from '../webrtc/tokens.ts';
import { gatewaySocket, webrtcDir } from '../webrtc/names.ts';
import { buildArtifacts } from './artifacts.ts';
import { chooseTurnNodes, decide, storedZone } from './decide.ts';
import { turnTlsMaterial } from './tls.ts';
import { loadCluster } from './nodes.ts';
import { runProbe } from './monitor.ts';
import { clusterVars } from './vars.ts';
import type { ProbeCheck, ProbeResult } from './probe-main.ts';

export const INSPECTOR_FORMAT_VERSION = '1.0';

export interface Finding {
  check: string;
  severity: 'error' | 'warning';
  namespace?: string;
  node?: string;
  message: string;
  fix: string;
}

export interface InspectorReport {
  format_version: string;
  environment: string;
  checks: string[];
  findings: Finding[];
  ok: boolean;
}

export const CHECKS = ['reachability', 'sfu-coverage', 'turn-redundancy', 'units', 'firewall', 'dns', 'cluster-state', 'turn-secret', 'gateway-credential'] as const;

const sha256 = (v: string) => createHash('sha256').update(v).digest('hex');
type R = ProbeResult & Record<string, any>;

export async function inspect(o: { environment: string; inventory: string; store: Store; namespace?: string; acceptNewHostKeys?: boolean }): Promise<InspectorReport> {
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const configs = (await o.store.listWebrtcConfigs()).filter((c) => c.enabled && (!o.namespace || c.namespace === o.namespace));
  const allocations = await o.store.listAllocations();
  const hosts = Inventory.load(o.inventory).select('cluster');
  const cluster = loadCluster(o.inventory);
  const { rqliteHttpPort, rqliteClientDir } = clusterVars();
  const program = readFileSync((await buildArtifacts()).probe, 'utf8');
  const enabledNs = new Set((await o.store.listWebrtcConfigs()).map((c) => c.namespace));
  const dns = new Map<string, { name: string; value: string }[]>();
  for (const c of configs) dns.set(c.namespace, await o.store.listDnsRecords(c.namespace));
  const tokens = new Map<string, string>();
  for (const c of configs) {
    const key = await o.store.getJwtKey(c.namespace);
    if (key) tokens.set(c.namespace, await mintToken(key, { subject: 'orama-inspector', owner: false, ttl: 120 }));
  }

  // Round 1, on every node: units, firewall, state files, secrets (hashed), health, gateways' credentials.
  const round1 = await Promise.all(
    hosts.map(async (h) => {
      const wg = String(h.vars.wg_ip);
      const pub = String(h.vars.public_ip ?? h.address);
      const checks: ProbeCheck[] = [
        { id: 'units', kind: 'units', pattern: 'orama-namespace-*' },
        { id: 'ufw', kind: 'read', path: '/etc/ufw/user.rules' },
        { id: 'db-secrets', kind: 'rqlite', url: `http://${wg}:${rqliteHttpPort}`, netrc: `${rqliteClientDir}/monitor.netrc`, query: 'SELECT namespace, turn_secret FROM namespace_webrtc_config', hash: true },
      ];
      for (const c of configs) {
        const mine = allocations.filter((a) => a.namespace === c.namespace && a.node === h.name);
        const signal = mine.find((a) => a.kind === 'sfu_signal')?.portStart;
        checks.push({ id: `${c.namespace}/state`, kind: 'read', path: `/var/lib/orama/namespaces/${c.namespace}/cluster_state.json` });
        for (const name of new Set((dns.get(c.namespace) ?? []).map((r) => r.name))) checks.push({ id: `${c.namespace}/dns/${name}`, kind: 'dns', server: pub, name });
        if (mine.some((a) => a.kind === 'turn_listen')) checks.push({ id: `${c.namespace}/secret`, kind: 'config_hash', path: `${webrtcDir(c.namespace)}/turnserver.conf`, key: 'static-auth-secret' });
        if (signal) {
          checks.push({ id: `${c.namespace}/sfu`, kind: 'http', url: `http://${wg}:${signal}/health` });
          const token = tokens.get(c.namespace);
          if (token) checks.push({ id: `${c.namespace}/cred`, kind: 'http', method: 'POST', url: 'http://gateway/v1/webrtc/turn/credentials', socket: gatewaySocket(c.namespace), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
        }
      }
      return { host: h, ...(await runProbe(h, program, checks, o.acceptNewHostKeys)) };
    }),
  );

  for (const { host, error } of round1) {
    if (error) add({ check: 'reachability', severity: 'error', node: host.name, message: `${host.name} could not be inspected: ${error}`, fix: `check that ${host.name} is up and its ssh answers (orama-provision cluster status, or the node's console)` });
  }
  const live = round1.filter((x) => x.results);

  // units ↔ operator store: a namespace's units where it has port blocks, none where it has not.
  for (const { host, results } of live) {
    const units = ((results!.units as R).units ?? []) as { unit: string; active: string }[];
    const byNs = new Map<string, { unit: string; active: string }[]>();
    for (const u of units) {
      const ns = /@([^.]+)\.service$/.exec(u.unit)?.[1];
      if (ns) byNs.set(ns, [...(byNs.get(ns) ?? []), u]);
    }
    for (const [ns, list] of byNs) {
      const held = allocations.some((a) => a.namespace === ns && a.node === host.name);
      if (!held && list.some((u) => u.active === 'active' || u.active === 'activating')) {
        add({ check: 'units', severity: 'error', namespace: ns, node: host.name, message: `${list.filter((u) => u.active === 'active').map((u) => u.unit).join(', ')} running on ${host.name}, but the operator store holds no port block of namespace ${ns} there`, fix: `orama namespace disable webrtc --namespace ${ns} --force (removes them; or enable it again if the store lost it)` });
      }
    }
    for (const c of configs) {
      const mine = allocations.filter((a) => a.namespace === c.namespace && a.node === host.name);
      const want = [...(mine.some((a) => a.kind === 'sfu_signal') ? ['sfu', 'webrtc-gateway'] : []), ...(mine.some((a) => a.kind === 'turn_listen') ? ['turn'] : [])];
      for (const s of want) {
        const unit = `orama-namespace-${s}@${c.namespace}.service`;
        const u = (byNs.get(c.namespace) ?? []).find((x) => x.unit === unit);
        if (!u || u.active !== 'active') add({ check: 'units', severity: 'error', namespace: c.namespace, node: host.name, message: `${unit} is ${u?.active ?? 'not installed'} on ${host.name}, but the operator store has its port block there`, fix: `systemctl restart ${unit} on ${host.name}, or orama namespace enable webrtc --namespace ${c.namespace}` });
      }
    }
  }

  // What enable decides for a namespace now, from the operator store (its firewall, its ports).
  const decided = (ns: string) => decide(ns, cluster.nodes, allocations, new Set(turnTlsMaterial(cluster, chooseTurnNodes(cluster.nodes.map((n) => n.name), allocations, ns)).keys()));

  // firewall: each namespace's set exactly as decided; every other rule in a known set.
  for (const c of configs) {
    const d = decided(c.namespace);
    for (const { host, results } of live) {
      const plan = d.nodes[host.name];
      const rules = parseUserRules(((results!.ufw as R).text as string) ?? '');
      const have = new Set(rules.filter((r) => r.set === `webrtc-${c.namespace}`).map((r) => r.key));
      const want = new Set(plan ? expandRules(plan.firewall).map(ruleKey) : []);
      for (const k of want) if (!have.has(k)) add({ check: 'firewall', severity: 'error', namespace: c.namespace, node: host.name, message: `ufw on ${host.name} lacks ${keyToSpec(k)} of set webrtc-${c.namespace}`, fix: `orama namespace enable webrtc --namespace ${c.namespace} (re-applies the set)` });
      for (const k of have) if (!want.has(k)) add({ check: 'firewall', severity: 'error', namespace: c.namespace, node: host.name, message: `ufw on ${host.name} has ${keyToSpec(k)} in set webrtc-${c.namespace}, which the namespace's plan does not open`, fix: `orama namespace enable webrtc --namespace ${c.namespace} (removes it)` });
    }
  }
  for (const { host, results } of live) {
    for (const r of parseUserRules(((results!.ufw as R).text as string) ?? '')) {
      const known = r.set === 'node-base' || (r.set?.startsWith('webrtc-') && enabledNs.has(r.set.slice(7)));
      if (!known) add({ check: 'firewall', severity: 'error', node: host.name, message: `extra open port on ${host.name}: ${keyToSpec(r.key)}${r.set ? ` (set ${r.set}, which nothing here owns)` : ' (in no orama set)'}`, fix: `remove it on ${host.name} (ufw status numbered; ufw delete N), or give it to a role's ufw set` });
    }
  }

  for (const c of configs) {
    const ns = c.namespace;
    const mine = allocations.filter((a) => a.namespace === ns);
    const turnNodes = [...new Set(mine.filter((a) => a.kind === 'turn_listen').map((a) => a.node))].sort();
    const ip = (n: string) => cluster.nodes.find((x) => x.name === n)?.publicIp;

    // sfu-coverage
    for (const { host, results } of live) {
      const s = results![`${ns}/sfu`] as R | undefined;
      if (!s) add({ check: 'sfu-coverage', severity: 'error', namespace: ns, node: host.name, message: `no SFU of ${ns} is planned on ${host.name} (no port block in the operator store)`, fix: `orama namespace enable webrtc --namespace ${ns}` });
      else if (!s.ok) add({ check: 'sfu-coverage', severity: 'error', namespace: ns, node: host.name, message: `the SFU of ${ns} on ${host.name} does not answer /health (${s.status ? `HTTP ${s.status}` : s.error})`, fix: `systemctl restart orama-namespace-sfu@${ns}.service on ${host.name}; journalctl -u it for why` });
    }

    // cluster-state: what a node would restore ↔ the operator store.
    const d = decided(ns);
    for (const { host, results } of live) {
      const st = results![`${ns}/state`] as R;
      const want = d.nodes[host.name];
      if (!st?.ok) {
        add({ check: 'cluster-state', severity: 'error', namespace: ns, node: host.name, message: `/var/lib/orama/namespaces/${ns}/cluster_state.json on ${host.name}: ${st?.error ?? 'missing'}`, fix: `orama namespace enable webrtc --namespace ${ns} (writes it)` });
        continue;
      }
      let v: { has_turn?: boolean; has_sfu?: boolean; ports?: Record<string, unknown> } = {};
      try {
        v = JSON.parse(st.text);
      } catch {}
      const diffs: string[] = [];
      if (v.has_sfu !== true) diffs.push(`has_sfu ${v.has_sfu} (store: true)`);
      if (Boolean(v.has_turn) !== Boolean(want?.has_turn)) diffs.push(`has_turn ${v.has_turn} (store: ${Boolean(want?.has_turn)})`);
      for (const k of ['sfu_signal_port', 'sfu_media_min', 'sfu_media_max', 'turn_port', 'turn_relay_min', 'turn_relay_max'] as const) {
        if (want && (want as unknown as Record<string, unknown>)[k] !== undefined && v.ports?.[k] !== (want as unknown as Record<string, unknown>)[k]) diffs.push(`${k} ${v.ports?.[k]} (store: ${(want as unknown as Record<string, unknown>)[k]})`);
      }
      if (diffs.length) add({ check: 'cluster-state', severity: 'error', namespace: ns, node: host.name, message: `cluster_state.json on ${host.name} disagrees with the operator store: ${diffs.join(', ')}`, fix: `orama namespace enable webrtc --namespace ${ns} (rewrites it from the store)` });
    }

    // dns: the operator store's records ↔ the TURN nodes, and what each node's DNS server answers ↔ the records.
    const zone = storedZone(ns, dns.get(ns) ?? []);
    const stored = dns.get(ns) ?? [];
    const records = stored.filter((r) => r.name === `turn.${zone}`).map((r) => r.value).sort();
    const wantIps = turnNodes.map(ip).filter(Boolean).sort() as string[];
    if (JSON.stringify(records) !== JSON.stringify(wantIps)) add({ check: 'dns', severity: 'error', namespace: ns, message: `turn.ns-${ns} A records [${records.join(', ')}] ≠ the TURN nodes' addresses [${wantIps.join(', ')}] (operator store)`, fix: `orama namespace enable webrtc --namespace ${ns} (rewrites the records)` });
    for (const { host, results } of live) {
      for (const name of new Set(stored.map((r) => r.name))) {
        const want = stored.filter((r) => r.name === name).map((r) => r.value).sort();
        const a = results![`${ns}/dns/${name}`] as R | undefined;
        const got = a?.ok ? (a.addresses as string[]) : undefined;
        if (JSON.stringify(got) !== JSON.stringify(want)) add({ check: 'dns', severity: 'error', namespace: ns, node: host.name, message: `the DNS server on ${host.name} answers ${name} with ${got ? `[${got.join(', ')}]` : a?.error ?? 'nothing'}, the operator store says [${want.join(', ')}]`, fix: `orama namespace enable webrtc --namespace ${ns} (rewrites the zone); systemctl status orama-dns.service on ${host.name}` });
      }
    }

    // turn-secret: by hash, on each TURN node and in the cluster database, against the operator store.
    const storeHash = sha256(c.turnSecret.reveal());
    for (const { host, results } of live) {
      const s = results![`${ns}/secret`] as R | undefined;
      if (s && (!s.ok || s.sha256 !== storeHash)) add({ check: 'turn-secret', severity: 'error', namespace: ns, node: host.name, message: `the TURN secret in ${host.name}'s coturn config ${s.ok ? 'differs from' : `cannot be read (${s.error}) to compare with`} the operator store's (sha256 compared; the secret stays on the node)`, fix: `orama namespace enable webrtc --namespace ${ns} (renders the config from the store and restarts coturn)` });
    }
    const db = live.map((x) => x.results!['db-secrets'] as R).find((x) => x.ok);
    const dbRow = (db?.rows as string[][] | undefined)?.find((row) => row[0] === sha256(ns));
    if (!db) add({ check: 'turn-secret', severity: 'error', namespace: ns, message: `the cluster database could not be read to compare the TURN secret`, fix: 'check rqlite on the nodes (orama monitor report shows the database column)' });
    else if (!dbRow || dbRow[1] !== storeHash) add({ check: 'turn-secret', severity: 'error', namespace: ns, message: `the TURN secret in the cluster database ${dbRow ? 'differs from' : 'is missing for'} the operator store's (compared by sha256)`, fix: `orama namespace enable webrtc --namespace ${ns} (seeds the cluster database from the store)` });

    // turn-redundancy, gateway-credential: round 2, each gateway's credential on each TURN node.
    const creds = live.map(({ host, results }) => ({ gw: host.name, r: results![`${ns}/cred`] as R | undefined })).filter((x) => x.r);
    for (const { gw, r } of creds) {
      if (!r!.ok) add({ check: 'gateway-credential', severity: 'error', namespace: ns, node: gw, message: `the gateway of ${ns} on ${gw} did not issue TURN credentials (${r!.status ? `HTTP ${r!.status}` : r!.error})`, fix: `systemctl status orama-namespace-webrtc-gateway@${ns}.service on ${gw}` });
    }
    const round2 = await Promise.all(
      live.filter(({ host }) => turnNodes.includes(host.name)).map(async ({ host }) => {
        const listen = mine.find((a) => a.kind === 'turn_listen' && a.node === host.name)!;
        const checks: ProbeCheck[] = creds.filter((x) => x.r!.ok).map(({ gw, r }) => ({ id: gw, kind: 'turn', host: ip(host.name)!, port: listen.portStart, username: r!.body.username, password: r!.body.credential }));
        return { turn: host.name, ...(await runProbe(host, program, checks, o.acceptNewHostKeys)) };
      }),
    );
    let allocating = 0;
    for (const { turn, results, error } of round2) {
      if (error) continue; // already a reachability finding, or will be
      const ok = Object.values(results!).filter((x) => x.ok).length;
      if (ok > 0) allocating++;
      for (const [gw, x] of Object.entries(results!) as [string, R][]) {
        if (!x.ok) add({ check: 'gateway-credential', severity: 'error', namespace: ns, node: turn, message: `coturn of ${ns} on ${turn} refused the credential from the gateway on ${gw}: binding ${x.binding}, allocation ${x.allocate}`, fix: `compare the secrets (turn-secret check); systemctl restart orama-namespace-turn@${ns}.service on ${turn}` });
      }
    }
    if (allocating < 2) add({ check: 'turn-redundancy', severity: 'error', namespace: ns, message: `${allocating} of the 2 TURN nodes of ${ns} allocate with a gateway's credential (${turnNodes.join(', ') || 'none planned'})`, fix: `orama monitor report --namespace ${ns}; restart the failing coturn or enable the namespace again` });
  }

  if (o.namespace && !configs.length) {
    add({ check: 'units', severity: 'error', namespace: o.namespace, message: `namespace ${o.namespace} has no enabled WebRTC in the operator store`, fix: `orama namespace enable webrtc --namespace ${o.namespace}` });
  }
  return { format_version: INSPECTOR_FORMAT_VERSION, environment: o.environment, checks: [...CHECKS], findings, ok: !findings.some((f) => f.severity === 'error') };
}

export function formatInspector(r: InspectorReport): string {
  const lines = [`environment ${r.environment}: ${r.checks.length} checks (${r.checks.join(', ')})`, ''];
  for (const f of r.findings) lines.push(`${f.severity.toUpperCase().padEnd(7)} ${f.check.padEnd(18)} ${f.message}`, `        fix: ${f.fix}`);
  lines.push(r.findings.length ? '' : 'no findings', r.ok ? 'OK' : `FAILED: ${r.findings.filter((f) => f.severity === 'error').length} error(s)`, '');
  return lines.join('\n');
}
