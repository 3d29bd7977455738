// TURN REST API credentials (draft-uberti-behave-turn-rest), the scheme coturn's
// `use-auth-secret` verifies: username "<expiry unix>:<namespace>",
// credential base64(HMAC-SHA1(secret, username)).
import { createHmac } from 'node:crypto';

export const DEFAULT_TURN_TTL_SECONDS = 600;
/** Clients are sent fresh credentials at this fraction of the TTL (the seed: 80%). */
export const REFRESH_AT_FRACTION = 0.8;

export interface TurnCredentials {
  urls: string[];
  username: string;
  credential: string;
  ttl: number;
}

export function turnCredential(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

export function issueTurnCredentials(opts: {
  secret: string;
  namespace: string;
  urls: string[];
  ttl?: number;
  now?: number; // unix seconds; injectable for tests
}): TurnCredentials {
  const ttl = opts.ttl ?? DEFAULT_TURN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl <= 0) throw new Error(`TURN ttl must be a positive integer of seconds, got ${ttl}`);
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(opts.namespace)) throw new Error(`invalid namespace name "${opts.namespace}"`);
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const username = `${now + ttl}:${opts.namespace}`;
  return { urls: opts.urls, username, credential: turnCredential(opts.secret, username), ttl };
}

/** Milliseconds after issue at which a refresh must be sent. */
export function refreshDelayMs(ttl: number): number {
  return Math.floor(ttl * REFRESH_AT_FRACTION * 1000);
}
