// Headers on every response, written in one onSend hook. The gateway serves JSON (and the
// signaling upgrade); a page served later from it may loosen the CSP for its own route.
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SECURITY_HEADERS: Record<string, string> = {
  'permissions-policy': 'camera=(self), microphone=(self)',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
};

const ENTRIES = Object.entries(SECURITY_HEADERS);

/** onSend hook (callback style: no promise per response); a route's own value wins. */
export function securityHeaders(_req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
  for (const [k, v] of ENTRIES) {
    if (!reply.hasHeader(k)) reply.header(k, v);
  }
  done(null, payload);
}
