// Names every part agrees on: what a namespace may be called, and the systemd units and system
// users of its services on a node. One rule, used by the controller (namespace/), the services and
// the store.
import { createHash } from 'node:crypto';

export const NAMESPACE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The services a namespace runs on a node, by their short names. */
export const SERVICES = ['turn', 'sfu', 'gateway'] as const;
export type Service = (typeof SERVICES)[number];

const UNIT_PREFIX: Record<Service, string> = { turn: 'orama-namespace-turn', sfu: 'orama-namespace-sfu', gateway: 'orama-namespace-webrtc-gateway' };

/** systemd unit of a namespace's service, e.g. orama-namespace-sfu@myapp.service. */
export function unitName(service: Service, ns: string): string {
  return `${UNIT_PREFIX[service]}@${ns}.service`;
}

/** A namespace's config directory on a node (its services' configs, coturn's TLS pair). */
export function webrtcDir(ns: string): string {
  return `/etc/orama/webrtc/${ns}`;
}

/** Where systemd puts the unit's LoadCredential= files while it runs ($CREDENTIALS_DIRECTORY). */
export function credentialsDir(service: Service, ns: string): string {
  return `/run/credentials/${unitName(service, ns)}`;
}

/**
 * The system user a namespace's service runs as: one per service per namespace, so namespace A's
 * SFU cannot read B's credentials and the TURN wall's owner-match rules can tell A's coturn from
 * B's. "orama-turn-myapp"; a name that would pass useradd's 32 characters keeps 12 characters of
 * the namespace and adds 8 of its hash ("orama-turn-averyveryverylo-1a2b3c4d").
 */
export function serviceUser(service: Service, ns: string): string {
  const prefix = `orama-${service === 'gateway' ? 'gw' : service}-`;
  const plain = prefix + ns;
  if (plain.length <= 32) return plain;
  const hash = createHash('sha256').update(ns).digest('hex').slice(0, 8);
  return `${prefix}${ns.slice(0, 31 - prefix.length - 8).replace(/-+$/, '')}-${hash}`;
}

/** The Node runtime the runtime role installs on every node (roles/runtime: runtime_dir). */
export const NODE_RUNTIME = '/opt/orama/runtime/node';

/**
 * Where a namespace's gateway listens on a node: a Unix socket in its unit's RuntimeDirectory.
 * The HTTPS front (roles/front, its Caddyfile) derives the same path from the request's host name
 * ns-NAME.… — so enabling a namespace never touches the front's config (Caddy 2.6 closes every
 * proxied WebSocket on a reload).
 */
export const gatewayRuntimeDir = (ns: string) => `orama-gateway-${ns}`;
export const gatewaySocket = (ns: string) => `/run/${gatewayRuntimeDir(ns)}/http.sock`;
