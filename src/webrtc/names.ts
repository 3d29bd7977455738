// Names every part agrees on: what a namespace may be called, and the systemd units and system
// users of its services on a node. One rule, used by the controller (namespace/), the services and
// the store.
import { createHash } from 'node:crypto';

/**
 * A namespace's name: lowercase letters, digits and dashes, at most 60 characters — so that its
 * DNS label `ns-NAME` (its zone, its front's host name) fits DNS's 63. The one rule: the CLIs, the
 * gateway's and the SFU's config schemas all use it.
 */
export const NAMESPACE_PATTERN = '^[a-z0-9][a-z0-9-]{0,59}$';
export const NAMESPACE_RE = new RegExp(NAMESPACE_PATTERN);

/**
 * What is wrong with a base domain (undefined: nothing). A namespace's names are made from it
 * (ns-NAME.BASE: its zone, its TURN realm, the certificate the front needs), so it is a DNS name
 * as they are written: lowercase labels of letters, digits and dashes, no dash at either end of a
 * label, each at most 63 characters, at least two labels, 253 characters in all, no final dot.
 * One rule for every way it comes in: --base-domain, an environment's base_domain,
 * ORAMA_BASE_DOMAIN, the test cluster's ORAMA_CLUSTER_BASE_DOMAIN.
 */
export function baseDomainProblem(domain: string): string | undefined {
  if (!domain) return 'empty';
  if (domain.length > 253) return `${domain.length} characters long; a DNS name has at most 253`;
  if (domain !== domain.toLowerCase()) return `not lowercase (write ${JSON.stringify(domain.toLowerCase())})`;
  const labels = domain.split('.');
  for (const l of labels) {
    if (!l) return 'an empty label (two dots in a row, or a dot at an end)';
    if (!/^[a-z0-9-]+$/.test(l)) return `the label ${JSON.stringify(l.length > 40 ? l.slice(0, 40) + '…' : l)} holds characters other than a-z, 0-9 and -`;
    if (l.length > 63) return `the label ${JSON.stringify(l.slice(0, 20) + '…')} is ${l.length} characters long; a label has at most 63`;
    if (l.startsWith('-') || l.endsWith('-')) return `the label ${JSON.stringify(l)} begins or ends with a dash`;
  }
  if (labels.length < 2) return 'a single label; a base domain has at least two (like example.org)';
  return undefined;
}

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
