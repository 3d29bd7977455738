// `orama namespace webrtc-status`: what the store says (config, engine, ports, DNS) next to what
// the nodes say (units active, SFU /health, the engine in their sfu.json) — per node `sfu_up` /
// `turn_up` as the seed's monitor.
import { Inventory } from '../provision/inventory.ts';
import { SshTransport } from '../provision/transport/ssh.ts';
import { shellQuote } from '../provision/transport/transport.ts';
import type { Store } from '../store/store.ts';
import { unitName, webrtcDir } from '../webrtc/names.ts';
import { storedZone } from './decide.ts';

export interface NodeStatus {
  node: string;
  public_ip: string;
  wg_ip: string;
  has_turn: boolean;
  sfu_up: boolean;
  turn_up: boolean | null;
  gateway_up: boolean;
  sfu_health: string;
  /** The engine the node's sfu.json names (null: no sfu.json, or it names none). */
  sfu_engine: string | null;
  ports: Record<string, string>;
  error?: string;
}

export interface WebrtcStatus {
  namespace: string;
  enabled: boolean;
  /** The namespace's SFU engine as the operator store records it (null: none recorded). */
  engine: string | null;
  turn_nodes: string[];
  /** Where browsers and the REST API reach the namespace: its gateways behind the HTTPS front. */
  url: string | null;
  dns: { name: string; value: string }[];
  nodes: NodeStatus[];
  healthy: boolean;
}

export async function webrtcStatus(o: { namespace: string; inventory: string; store: Store; acceptNewHostKeys?: boolean }): Promise<WebrtcStatus> {
  const ns = o.namespace;
  const cfg = await o.store.getWebrtcConfig(ns);
  const allocs = await o.store.listAllocations({ namespace: ns });
  const dns = (await o.store.listDnsRecords(ns)).map((r) => ({ name: r.name, value: r.value }));
  const inv = Inventory.load(o.inventory);
  const hosts = inv.select('cluster');
  const turnNodes = [...new Set(allocs.filter((a) => a.kind === 'turn_relay').map((a) => a.node))].sort();
  const nodes = await Promise.all(
    hosts.map(async (h): Promise<NodeStatus> => {
      const mine = allocs.filter((a) => a.node === h.name);
      const ports = Object.fromEntries(mine.map((a) => [a.kind, a.portStart === a.portEnd ? String(a.portStart) : `${a.portStart}-${a.portEnd}`]));
      const signal = mine.find((a) => a.kind === 'sfu_signal')?.portStart;
      const s: NodeStatus = { node: h.name, public_ip: String(h.vars.public_ip), wg_ip: String(h.vars.wg_ip), has_turn: turnNodes.includes(h.name), sfu_up: false, turn_up: null, gateway_up: false, sfu_health: '-', sfu_engine: null, ports };
      const t = new SshTransport(h, { acceptNewHostKeys: o.acceptNewHostKeys, connectTimeoutMs: 5000 });
      try {
        const units = (['sfu', 'turn', 'gateway'] as const).map((u) => unitName(u, ns)).join(' ');
        // sfu.json is the role's to_nice_json: one `"engine": "NAME",` line.
        const engine = `sed -n 's/^ *"engine": *"\\([^"]*\\)".*/\\1/p' ${shellQuote(`${webrtcDir(ns)}/sfu.json`)} 2>/dev/null`;
        const r = await t.exec(`systemctl is-active ${units}; echo ---; ${signal ? `curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://${h.vars.wg_ip}:${signal}/health` : 'echo -'}; echo; echo ---; ${engine}`);
        const [states, health, eng = ''] = r.stdout.split('---\n');
        s.sfu_engine = eng.trim() || null;
        const [sfu, turn, gw] = states.trim().split('\n');
        s.sfu_up = sfu === 'active' && health.trim() === '200';
        s.turn_up = s.has_turn ? turn === 'active' : null;
        s.gateway_up = gw === 'active';
        s.sfu_health = health.trim() || '-';
      } catch (e) {
        s.error = (e as Error).message;
      } finally {
        await t.close();
      }
      return s;
    }),
  );
  const healthy = Boolean(cfg?.enabled) && nodes.every((n) => n.sfu_up && n.gateway_up && n.turn_up !== false) && nodes.filter((n) => n.turn_up).length === turnNodes.length && turnNodes.length >= 2;
  const url = dns.length ? `https://${storedZone(ns, dns)}` : null;
  return { namespace: ns, enabled: Boolean(cfg?.enabled), engine: cfg?.sfuEngine ?? null, turn_nodes: turnNodes, url, dns, nodes, healthy };
}

export function formatStatus(s: WebrtcStatus): string {
  const yes = (v: boolean | null) => (v === null ? '-' : v ? 'up' : 'DOWN');
  // A node whose sfu.json names another engine than the store: an engine switch that has not
  // reached it (a failed or interrupted enable; a re-run finishes it).
  const behind = s.engine ? s.nodes.filter((n) => n.sfu_engine && n.sfu_engine !== s.engine) : [];
  const lines = [
    `namespace ${s.namespace}: WebRTC ${s.enabled ? 'enabled' : 'not enabled'}${s.url ? ` at ${s.url}/` : ''}; SFU engine ${s.engine ?? '-'}; SFU coverage ${s.nodes.filter((n) => n.sfu_up).length}/${s.nodes.length}, TURN redundancy ${s.nodes.filter((n) => n.turn_up).length}/${s.turn_nodes.length || 2}`,
    '',
    'node    public_ip     wg_ip      sfu   engine     turn  gateway  sfu /health  ports',
    ...s.nodes.map((n) => `${n.node.padEnd(7)} ${n.public_ip.padEnd(13)} ${n.wg_ip.padEnd(10)} ${yes(n.sfu_up).padEnd(5)} ${(n.sfu_engine ?? '-').padEnd(10)} ${yes(n.turn_up).padEnd(5)} ${yes(n.gateway_up).padEnd(8)} ${n.sfu_health.padEnd(12)} ${Object.entries(n.ports).map(([k, v]) => `${k}=${v}`).join(' ')}${n.error ? `  (${n.error})` : ''}`),
    '',
    ...behind.map((n) => `engine  ${n.node} runs ${n.sfu_engine}, the namespace's is ${s.engine}: orama namespace enable webrtc --namespace ${s.namespace} finishes the switch`),
    ...s.dns.map((d) => `dns  ${d.name}  A  ${d.value}`),
    s.healthy ? 'healthy' : 'NOT healthy',
    '',
  ];
  return lines.join('\n');
}
