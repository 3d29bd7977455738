// `orama monitor report`: per node and per namespace, what REAL probes say — the SFU's /health
// over WireGuard, a TURN binding plus an allocation with a credential derived from the namespace's
// secret, the gateway's /health — with rooms and peers, port blocks and relay allocations in use.
// The probes run on each node over SSH (probe-main.ts, sent on stdin, nothing installed): the
// mesh firewall and the database's auth close those services to the controller. Two stores, each
// value says which: the operator's store (--state: namespaces, their secrets, port blocks) and
// the cluster's database (rqlite on the nodes: rooms). Read-only: nothing on a node changes.
import { readFileSync } from 'node:fs';
import { Inventory, type Host } from '../provision/inventory.ts';
import { SshTransport } from '../provision/transport/ssh.ts';
import type { PortAllocation, Store } from '../store/store.ts';
import { issueTurnCredentials } from '../webrtc/credentials.ts';
import { NODE_RUNTIME, gatewaySocket } from '../webrtc/names.ts';
import { ProvisionError } from '../provision/errors.ts';
import { buildArtifacts } from './artifacts.ts';
import { storedZone } from './decide.ts';
import { clusterVars } from './vars.ts';
import type { ProbeCheck, ProbeResult } from './probe-main.ts';

/** The shape of `--json` (docs/operations.md); bumped on an incompatible change. */
export const MONITOR_FORMAT_VERSION = '1.0';

export interface NodeReport {
  node: string;
  public_ip: string;
  wg_ip: string;
  reachable: boolean;
  /** The cluster database answers this node's read-only monitor user. */
  db_up: boolean | null;
  error?: string;
}

export interface NamespaceNodeReport {
  node: string;
  sfu_up: boolean;
  /** null: not a TURN node of the namespace. */
  turn_up: boolean | null;
  /** The gateway's /health on its socket. */
  gateway_up: boolean;
  /** The same through the node's HTTPS front, https://ns-NAME.BASE/health at the node's address. */
  front_up: boolean;
  /** From the SFU's /health. */
  peers: number | null;
  /** UDP sockets bound in the namespace's relay range on this node (TURN nodes). */
  relay_allocations: number | null;
  /** Port blocks, from the operator store. */
  ports: Record<string, string>;
  /** Rooms placed on this node's SFU, from the cluster database. */
  rooms: number | null;
  problems: string[];
}

export interface NamespaceReport {
  namespace: string;
  /** From the operator store. */
  enabled: boolean;
  turn_nodes: string[];
  nodes: NamespaceNodeReport[];
  healthy: boolean;
}

export interface MonitorReport {
  format_version: string;
  environment: string;
  sources: { operator_store: string; cluster_database: string };
  nodes: NodeReport[];
  namespaces: NamespaceReport[];
  healthy: boolean;
}

export interface MonitorOptions {
  environment: string;
  inventory: string;
  /** What --state said (shown as the operator store's source; never a password). */
  state: string;
  store: Store;
  namespace?: string;
  acceptNewHostKeys?: boolean;
}

const range = (a: PortAllocation) => (a.portStart === a.portEnd ? String(a.portStart) : `${a.portStart}-${a.portEnd}`);

/** Runs the probe program on a node: checks in, results out (or why the node could not be asked). */
export async function runProbe(host: Host, program: string, checks: ProbeCheck[], acceptNewHostKeys?: boolean): Promise<{ results?: Record<string, ProbeResult>; error?: string }> {
  const t = new SshTransport(host, { acceptNewHostKeys, connectTimeoutMs: 5000 });
  try {
    const r = await t.exec(`${NODE_RUNTIME} --input-type=module`, { stdin: `globalThis.__ORAMA_PROBE = ${JSON.stringify(checks)};\n${program}`, timeoutMs: 30_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      const v = JSON.parse(line);
      if (v.__error) return { error: `probe failed: ${v.__error}` };
      return { results: v };
    } catch {
      // The request (a TURN credential, a JWT) was on the same stdin: none of its values may reach a report.
      let why = (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ') || 'no output';
      for (const c of checks) for (const v of [c.kind === 'turn' ? c.password : undefined, c.kind === 'http' ? c.headers?.authorization : undefined]) if (v) why = why.split(v).join('(sensitive)');
      return { error: `probe failed (exit ${r.code}): ${why}` };
    }
  } catch (e) {
    return { error: (e as Error).message };
  } finally {
    await t.close();
  }
}

export async function monitorReport(o: MonitorOptions): Promise<MonitorReport> {
  const configs = (await o.store.listWebrtcConfigs()).filter((c) => !o.namespace || c.namespace === o.namespace);
  if (o.namespace && !configs.length) {
    const known = (await o.store.listWebrtcConfigs()).map((c) => c.namespace);
    throw new ProvisionError(`--namespace "${o.namespace}": no WebRTC for it in the operator store of environment "${o.environment}" (known: ${known.join(', ') || 'none'})`);
  }
  const allocations = await o.store.listAllocations();
  const hosts = Inventory.load(o.inventory).select('cluster');
  const { rqliteHttpPort, rqliteClientDir, frontConfDir } = clusterVars();
  const hostOf = new Map<string, string>();
  for (const c of configs) hostOf.set(c.namespace, storedZone(c.namespace, await o.store.listDnsRecords(c.namespace)));
  const program = readFileSync((await buildArtifacts()).probe, 'utf8');

  const perNode = await Promise.all(
    hosts.map(async (h) => {
      const wg = String(h.vars.wg_ip);
      const pub = String(h.vars.public_ip ?? h.address);
      const checks: ProbeCheck[] = [{ id: 'db', kind: 'rqlite', url: `http://${wg}:${rqliteHttpPort}`, netrc: `${rqliteClientDir}/monitor.netrc`, query: 'SELECT namespace, sfu_node, COUNT(*) FROM webrtc_rooms GROUP BY namespace, sfu_node' }];
      for (const c of configs) {
        const mine = allocations.filter((a) => a.namespace === c.namespace && a.node === h.name);
        const at = (k: string) => mine.find((a) => a.kind === k);
        const signal = at('sfu_signal')?.portStart;
        if (signal) {
          checks.push({ id: `${c.namespace}/sfu`, kind: 'http', url: `http://${wg}:${signal}/health` });
          checks.push({ id: `${c.namespace}/gateway`, kind: 'http', url: 'http://gateway/health', socket: gatewaySocket(c.namespace) });
          // What a browser reaches: the node's HTTPS front, by the namespace's name, with the
          // certificate the front was given, to this node's gateway.
          checks.push({ id: `${c.namespace}/front`, kind: 'http', url: `https://${hostOf.get(c.namespace)}/health`, connect: pub, cert_file: `${frontConfDir}/cert.pem` });
        }
        const listen = at('turn_listen');
        const relay = at('turn_relay');
        if (listen) {
          const cred = issueTurnCredentials({ secret: c.turnSecret.reveal(), namespace: c.namespace, subject: 'monitor', urls: [], ttl: 60 });
          checks.push({ id: `${c.namespace}/turn`, kind: 'turn', host: pub, port: listen.portStart, username: cred.username, password: cred.credential });
        }
        if (relay) checks.push({ id: `${c.namespace}/relay`, kind: 'relay_sockets', min: relay.portStart, max: relay.portEnd });
      }
      return { host: h, ...(await runProbe(h, program, checks, o.acceptNewHostKeys)) };
    }),
  );

  const nodes: NodeReport[] = perNode.map(({ host, results, error }) => ({
    node: host.name,
    public_ip: String(host.vars.public_ip ?? host.address),
    wg_ip: String(host.vars.wg_ip),
    reachable: !error,
    db_up: results ? results.db.ok : null,
    ...(error ? { error } : results && !results.db.ok ? { error: `cluster database: ${(results.db as { error?: string }).error}` } : {}),
  }));
  // Rooms by (namespace, node), from the first node whose database answered.
  const rooms = new Map<string, number>();
  const dbRows = perNode.find((p) => p.results?.db.ok)?.results?.db as { rows?: [string, string, number][] } | undefined;
  for (const [ns, node, n] of dbRows?.rows ?? []) rooms.set(`${ns}/${node}`, Number(n));

  const namespaces: NamespaceReport[] = configs.map((c) => {
    const mine = allocations.filter((a) => a.namespace === c.namespace);
    const turnNodes = [...new Set(mine.filter((a) => a.kind === 'turn_listen').map((a) => a.node))].sort();
    const rows = perNode.map(({ host, results, error }): NamespaceNodeReport => {
      const r = (k: string) => results?.[`${c.namespace}/${k}`] as (ProbeResult & Record<string, any>) | undefined;
      const here = mine.filter((a) => a.node === host.name);
      const isTurn = turnNodes.includes(host.name);
      const problems: string[] = [];
      if (error) problems.push(`unreachable: ${error}`);
      else {
        if (!here.some((a) => a.kind === 'sfu_signal')) problems.push('no SFU port block in the operator store');
        for (const k of ['sfu', 'gateway', 'front']) {
          const x = r(k);
          if (x && !x.ok) problems.push(`${k} /health: ${x.status ? `HTTP ${x.status}` : x.error}`);
        }
        const tr = r('turn');
        if (tr && !tr.ok) problems.push(`TURN: binding ${tr.binding}, allocation ${tr.allocate}`);
      }
      return {
        node: host.name,
        sfu_up: Boolean(r('sfu')?.ok),
        turn_up: isTurn ? Boolean(r('turn')?.ok) : null,
        gateway_up: Boolean(r('gateway')?.ok),
        front_up: Boolean(r('front')?.ok),
        peers: typeof r('sfu')?.body?.peers === 'number' ? r('sfu')!.body.peers : null,
        relay_allocations: isTurn && typeof r('relay')?.count === 'number' ? r('relay')!.count : null,
        ports: Object.fromEntries(here.map((a) => [a.kind, range(a)])),
        rooms: dbRows ? rooms.get(`${c.namespace}/${host.name}`) ?? 0 : null,
        problems,
      };
    });
    const healthy = c.enabled && turnNodes.length >= 2 && rows.every((n) => n.sfu_up && n.gateway_up && n.front_up && n.turn_up !== false);
    return { namespace: c.namespace, enabled: c.enabled, turn_nodes: turnNodes, nodes: rows, healthy };
  });

  return {
    format_version: MONITOR_FORMAT_VERSION,
    environment: o.environment,
    sources: { operator_store: /^https?:/.test(o.state) ? o.state.replace(/\/\/[^@/]*@/, '//') : o.state, cluster_database: `rqlite on the nodes' WireGuard addresses, port ${rqliteHttpPort} (monitor user)` },
    nodes,
    namespaces,
    healthy: nodes.every((n) => n.reachable && n.db_up) && namespaces.every((n) => n.healthy),
  };
}

export function formatMonitor(r: MonitorReport): string {
  const up = (v: boolean | null) => (v === null ? '-' : v ? 'up' : 'DOWN');
  const num = (v: number | null) => (v === null ? '-' : String(v));
  const pad = (cells: string[], widths: number[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  const lines = [
    `environment ${r.environment}`,
    `  operator store:    ${r.sources.operator_store}  (namespaces, secrets, port blocks)`,
    `  cluster database:  ${r.sources.cluster_database}  (rooms)`,
    '',
    pad(['node', 'public_ip', 'wg_ip', 'ssh', 'database'], [6, 13, 10, 4, 8]),
    ...r.nodes.map((n) => pad([n.node, n.public_ip, n.wg_ip, n.reachable ? 'ok' : 'DOWN', up(n.db_up)], [6, 13, 10, 4, 8]) + (n.error ? `  (${n.error})` : '')),
  ];
  for (const ns of r.namespaces) {
    const w = [6, 5, 5, 7, 5, 5, 5, 12];
    lines.push('', `namespace ${ns.namespace}: ${ns.enabled ? 'enabled' : 'NOT enabled'} in the operator store; TURN nodes ${ns.turn_nodes.join(', ') || 'none'}; ${ns.healthy ? 'healthy' : 'NOT healthy'}`);
    lines.push(pad(['node', 'sfu', 'turn', 'gateway', 'front', 'rooms', 'peers', 'relay allocs', 'port blocks (operator store)'], [...w, 0]));
    for (const n of ns.nodes) {
      lines.push(pad([n.node, up(n.sfu_up), up(n.turn_up), up(n.gateway_up), up(n.front_up), num(n.rooms), num(n.peers), num(n.relay_allocations), Object.entries(n.ports).map(([k, v]) => `${k}=${v}`).join(' ')], [...w, 0]));
      for (const p of n.problems) lines.push(`    ${n.node}: ${p}`);
    }
  }
  if (!r.namespaces.length) lines.push('', 'no namespace has WebRTC in this operator store');
  lines.push('', r.healthy ? 'healthy' : 'NOT healthy', '');
  return lines.join('\n');
}
