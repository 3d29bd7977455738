// The extra variables `orama namespace enable|disable webrtc` hands the playbooks, as one typed
// object built from the decision — the contract between the controller's decisions and the roles
// (roles/turn, sfu, gateway, webrtc_firewall, cluster_state read exactly these names).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Secret } from '../secret/secret.ts';
import { ProvisionError } from '../provision/errors.ts';
import { checkSfuConfigFile, type SfuConfigFile } from '../sfu/config.ts';
import type { EngineName } from '../sfu/engine.ts';
import { checkGatewayConfigFile, type GatewayConfigFile } from '../gateway/config.ts';
import type { ApiKeyRecord, JwtKey } from '../store/store.ts';
import { internalKey } from '../webrtc/sfu-api.ts';
import { SERVICES, credentialsDir, gatewayRuntimeDir, gatewaySocket, serviceUser, unitName, webrtcDir, type Service } from '../webrtc/names.ts';
import { DEFAULT_TURN_TTL_SECONDS } from '../webrtc/credentials.ts';
import type { EnableArtifacts } from './artifacts.ts';
import { TURN_NODE_COUNT, type Decision, type NodePlan, dnsRecords, nodeHostName, zoneName } from './decide.ts';
import type { ClusterNode } from './nodes.ts';
import type { TurnTls } from './tls.ts';

export const TURN_TTL = DEFAULT_TURN_TTL_SECONDS;
/** How long a stopping SFU lets its calls move (server-draining); the unit's stop timeout adds 10 s. */
export const SFU_DRAIN_DEADLINE_S = 20;
/** Where the gateway role ships the browser client and demo page. */
export const CLIENT_DIR = '/opt/orama/lib/client';
/** Where the sfu role ships mediasoup's worker, the one path sfu.json names (mediasoup_worker_bin). */
export const MEDIASOUP_WORKER_BIN = '/opt/orama/lib/mediasoup-worker';

/** playbooks/vars/cluster.yml: the cluster database's port and client directory, one source for playbooks and here. */
/** Who orama-seed is in the cluster database: the `seed` user, its password file on the node (roles/rqlite). */
export const seedUser = () => ({ username: 'seed', password_file: `${clusterVars().rqliteClientDir}/seed.password` });

export function clusterVars(file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'playbooks', 'vars', 'cluster.yml')): { rqliteHttpPort: number; rqliteClientDir: string; frontConfDir: string } {
  const v = YAML.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  return { rqliteHttpPort: Number(v.rqlite_http_port), rqliteClientDir: String(v.rqlite_client_dir), frontConfDir: String(v.front_conf_dir) };
}

/** The namespace's service users on every node (roles turn, sfu, gateway; removed by disable). */
export const webrtcUsers = (ns: string) => ({ turn: serviceUser('turn', ns), sfu: serviceUser('sfu', ns), gateway: serviceUser('gateway', ns) });

/** Its directory, units and credential directories on a node: the roles' defaults alias these (one rule, names.ts). */
export const webrtcNames = (ns: string) => ({
  dir: webrtcDir(ns),
  units: Object.fromEntries(SERVICES.map((s) => [s, unitName(s, ns)])) as Record<Service, string>,
  credentials: Object.fromEntries(SERVICES.map((s) => [s, credentialsDir(s, ns)])) as Record<Service, string>,
  /** The gateway's RuntimeDirectory (under /run) and the socket in it the HTTPS front proxies to. */
  gateway_runtime_dir: gatewayRuntimeDir(ns),
  gateway_socket: gatewaySocket(ns),
});

export interface EnableVars {
  namespace: string;
  base_domain: string;
  webrtc_nodes: Record<string, NodePlan>;
  webrtc_users: ReturnType<typeof webrtcUsers>;
  webrtc_names: ReturnType<typeof webrtcNames>;
  sfu_ips: string[];
  artifacts: EnableArtifacts;
  /** The namespace's SFU engine (decide.ts chooseEngine): the sfu role sizes the unit by it. */
  sfu_engine: EngineName;
  /** Where the sfu role puts mediasoup's worker (MEDIASOUP_WORKER_BIN). */
  mediasoup_worker_bin: string;
  turn_secret: Secret;
  internal_key: Secret;
  jwt_verify_key: Secret;
  /** What orama-seed writes into the cluster database (stdin, never argv). */
  seed_document: Secret;
  turn_tls: Record<string, TurnTls>;
  /** Each node's sfu.json and gateway.json, built and validated here (the roles render them as JSON). */
  webrtc_configs: Record<string, { sfu: SfuConfigFile; gateway: GatewayConfigFile }>;
  sfu_drain_deadline_s: number;
  /** The namespace's zone (roles/dns_zone): its name, a serial that changes with its content, NS names, records. */
  dns_zone: { name: string; serial: number; nameservers: { name: string; ip: string }[]; records: { name: string; type: 'A'; value: string; ttl: number }[] };
}

export interface EnableInput {
  namespace: string;
  baseDomain: string;
  nodes: ClusterNode[];
  decision: Decision;
  turnSecret: string;
  /** undefined in a plan for a namespace that has none yet. */
  jwtKey: JwtKey | null;
  apiKeys: ApiKeyRecord[];
  tls: Map<string, TurnTls>;
  artifacts: EnableArtifacts;
  /** The namespace's SFU engine, as chooseEngine decided it. */
  sfuEngine: EngineName;
}

/**
 * TURN URLs of the namespace, in the TURN nodes' inventory order: udp, tcp, then TLS if configured.
 * By address, or — a TURN node with `turn_url_host: name` — by the node's name in the namespace's
 * zone, NODE.ns-NAME.BASE (an A record every node's Knot serves: the zone's NS glue), which a TURN
 * certificate can name (*.ns-NAME.BASE).
 */
export function turnUrls(nodes: ClusterNode[], d: Decision, zone: string): string[] {
  return d.turnNodes.flatMap((n) => {
    const node = nodes.find((x) => x.name === n)!;
    const ip = node.vars.turn_url_host === 'name' ? nodeHostName(n, zone) : node.publicIp;
    const { turn_port: port, turn_tls_port: tlsPort } = d.nodes[n];
    return [`turn:${ip}:${port}?transport=udp`, `turn:${ip}:${port}?transport=tcp`, ...(tlsPort ? [`turns:${ip}:${tlsPort}?transport=tcp`] : [])];
  });
}

/**
 * Each node's SFU and gateway config as the typed files the services load, checked with the
 * services' own schemas before anything runs: a wrong key fails `enable --plan` on the controller,
 * naming the node, instead of a unit on a node.
 */
export function serviceConfigs(i: EnableInput): EnableVars['webrtc_configs'] {
  const ns = i.namespace;
  const urls = turnUrls(i.nodes, i.decision, zoneName(ns, i.baseDomain));
  const { rqliteHttpPort } = clusterVars();
  const out: EnableVars['webrtc_configs'] = {};
  for (const n of i.nodes) {
    const p = i.decision.nodes[n.name];
    const sfuCreds = credentialsDir('sfu', ns);
    const gwCreds = credentialsDir('gateway', ns);
    const sfu: SfuConfigFile = {
      namespace: ns,
      listen_ip: n.wgIp,
      signal_port: p.sfu_signal_port,
      media_port_min: p.sfu_media_min,
      media_port_max: p.sfu_media_max,
      turn_urls: urls,
      turn_relay_ips: i.decision.turnNodes.map((t) => i.nodes.find((x) => x.name === t)!.wgIp),
      turn_secret_file: `${sfuCreds}/turn-secret`,
      internal_key_file: `${sfuCreds}/internal-key`,
      credential_ttl: TURN_TTL,
      drain_deadline_s: SFU_DRAIN_DEADLINE_S,
      // Always written, so an engine switch is a visible change of this file (and a restart).
      engine: i.sfuEngine,
      mediasoup_worker_bin: MEDIASOUP_WORKER_BIN,
    };
    const gateway: GatewayConfigFile = {
      namespace: ns,
      listen: { socket: gatewaySocket(ns) },
      // Only the front connects; it sets X-Forwarded-For to the client's address.
      trust_proxy: true,
      store: { driver: 'rqlite', urls: i.nodes.map((x) => `http://${x.wgIp}:${rqliteHttpPort}`), username: 'gateway', password_file: `${gwCreds}/rqlite-password` },
      jwt: { alg: i.jwtKey?.alg ?? 'HS256', key_file: `${gwCreds}/jwt-key` },
      turn: { urls, ttl: TURN_TTL },
      sfu_nodes: i.nodes.map((x) => ({ node: x.name, ip: x.wgIp, signal_port: i.decision.nodes[x.name].sfu_signal_port })),
      internal_key_file: `${gwCreds}/internal-key`,
      client_dir: CLIENT_DIR,
      log_level: 'info',
    };
    try {
      checkSfuConfigFile(sfu);
      checkGatewayConfigFile(gateway, 'gateway config');
    } catch (e) {
      throw new ProvisionError(`host ${n.name}: namespace ${ns}: ${(e as Error).message}`);
    }
    out[n.name] = { sfu, gateway };
  }
  return out;
}

function dnsZone(ns: string, i: EnableInput): EnableVars['dns_zone'] {
  const name = zoneName(ns, i.baseDomain);
  const records = dnsRecords(ns, i.baseDomain, i.decision, i.nodes);
  const nameservers = i.nodes.map((n) => ({ name: nodeHostName(n.name, name), ip: n.publicIp }));
  // Deterministic (a no-op apply rewrites nothing), different whenever the content is.
  const serial = parseInt(createHash('sha256').update(JSON.stringify({ records, nameservers })).digest('hex').slice(0, 8), 16) % 2 ** 31;
  return { name, serial, nameservers, records };
}

export function enableVars(i: EnableInput): EnableVars {
  const ns = i.namespace;
  const jwtVerify = i.jwtKey ? (i.jwtKey.alg === 'HS256' ? i.jwtKey.signingKey.reveal() : i.jwtKey.publicKey!) : '(known after apply)';
  const seed = {
    ...seedUser(),
    config: { namespace: ns, turn_secret: i.turnSecret, sfu_node_count: i.nodes.length, turn_node_count: TURN_NODE_COUNT, turn_ttl: TURN_TTL },
    jwtKey: i.jwtKey && { alg: i.jwtKey.alg, kid: i.jwtKey.kid, signing_key: i.jwtKey.signingKey.reveal(), public_key: i.jwtKey.publicKey },
    apiKeys: i.apiKeys,
  };
  return {
    namespace: ns,
    base_domain: i.baseDomain,
    webrtc_nodes: i.decision.nodes,
    webrtc_users: webrtcUsers(ns),
    webrtc_names: webrtcNames(ns),
    sfu_ips: i.nodes.map((n) => n.wgIp),
    artifacts: i.artifacts,
    sfu_engine: i.sfuEngine,
    mediasoup_worker_bin: MEDIASOUP_WORKER_BIN,
    turn_secret: new Secret(i.turnSecret),
    // The SFU trusts the gateway by a key derived from the TURN secret: nothing more to store.
    internal_key: new Secret(internalKey(i.turnSecret, ns)),
    jwt_verify_key: new Secret(jwtVerify),
    seed_document: new Secret(JSON.stringify(seed)),
    turn_tls: Object.fromEntries(i.tls),
    webrtc_configs: serviceConfigs(i),
    sfu_drain_deadline_s: SFU_DRAIN_DEADLINE_S,
    dns_zone: dnsZone(ns, i),
  };
}
