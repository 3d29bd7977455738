// The contract between a namespace's gateways and its SFUs (the SFU's internal HTTP/WebSocket
// API on the node's WireGuard address): the paths, the headers the gateway sends, and the key
// that proves a request comes from a gateway of the namespace. Both sides import it from here.
import { createHmac } from 'node:crypto';

export const SFU_PATHS = {
  /** WS ?room=R — signaling, proxied by the gateway. */
  signal: '/signal',
  /** GET — rooms and their peer counts; DELETE /rooms/<room> closes one. */
  rooms: '/rooms',
  health: '/health',
  metrics: '/metrics',
} as const;

export const SFU_HEADERS = {
  /** The namespace's internal key (internalKey below); required on every internal request. */
  internalKey: 'x-orama-internal-key',
  namespace: 'x-orama-namespace',
  /** The subject the gateway authenticated (JWT sub / API key subject). */
  subject: 'x-orama-subject',
} as const;

/**
 * The key a namespace's SFUs accept from its gateways, derived from the namespace's TURN secret
 * (so there is nothing more to store or rotate separately): base64url(HMAC-SHA256(secret,
 * "orama-sfu-internal:<namespace>")).
 */
export function internalKey(turnSecret: string, namespace: string): string {
  return createHmac('sha256', turnSecret).update(`orama-sfu-internal:${namespace}`).digest('base64url');
}
