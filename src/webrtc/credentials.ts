// TURN REST API credentials (draft-uberti-behave-turn-rest), the scheme coturn's
// `use-auth-secret` verifies: username "<expiry unix>:<namespace>",
// credential base64(HMAC-SHA1(secret, username)).
import { createHmac } from 'node:crypto';

export const DEFAULT_TURN_TTL_SECONDS = 600;
/** Clients are sent fresh credentials at this fraction of the TTL (the seed: 80%). */
export const REFRESH_AT_FRACTION = 0.8;

const NAMESPACE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface TurnCredentials {
  urls: string[];
  username: string;
  credential: string;
  ttl: number;
}

export function turnCredential(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

type IssueOptions = {
  secret: string;
  namespace: string;
  urls: string[];
  ttl?: number;
  now?: number; // unix seconds; injectable for tests
};

/** The validated lifetime and the username "<expiry>:<namespace>". */
function turnUsername(opts: IssueOptions): { username: string; ttl: number } {
  const ttl = opts.ttl ?? DEFAULT_TURN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl <= 0) throw new Error(`TURN ttl must be a positive integer of seconds, got ${ttl}`);
  if (!NAMESPACE_RE.test(opts.namespace)) throw new Error(`invalid namespace name "${opts.namespace}"`);
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  return { username: `${now + ttl}:${opts.namespace}`, ttl };
}

export function issueTurnCredentials(opts: IssueOptions): TurnCredentials {
  const { username, ttl } = turnUsername(opts);
  return { urls: opts.urls, username, credential: turnCredential(opts.secret, username), ttl };
}

/**
 * issueTurnCredentials for a hot path (the gateway's credentials endpoint): the username changes
 * once a second (its expiry), so every caller within that second gets the same HMAC. This keeps
 * the last few (secret, username) → credential results instead of recomputing them per request.
 */
export function credentialIssuer(maxEntries = 16): typeof issueTurnCredentials {
  const memo = new Map<string, { secret: string; credential: string }>();
  return (opts) => {
    const { username, ttl } = turnUsername(opts);
    let hit = memo.get(username);
    if (!hit || hit.secret !== opts.secret) {
      hit = { secret: opts.secret, credential: turnCredential(opts.secret, username) };
      if (memo.size >= maxEntries) memo.delete(memo.keys().next().value!);
      memo.set(username, hit);
    }
    return { urls: opts.urls, username, credential: hit.credential, ttl };
  };
}

/** Milliseconds after issue at which a refresh must be sent. */
export function refreshDelayMs(ttl: number): number {
  return Math.floor(ttl * REFRESH_AT_FRACTION * 1000);
}
