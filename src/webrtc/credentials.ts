// TURN REST API credentials (draft-uberti-behave-turn-rest), the scheme coturn's
// `use-auth-secret` verifies: username "<expiry unix>:<namespace>:<subject>",
// credential base64(HMAC-SHA1(secret, username)).
//
// Deviation from the specification's "<expiry>:<namespace>": coturn keys its allocation quota on
// the username after the numeric expiry, so with the namespace alone every member of a namespace
// shared ONE quota (about 25 people, four allocations each). With the subject appended the quota
// is per user ("<namespace>:<subject>"); the HMAC still covers the whole username, so a client
// cannot change its subject. The gateway, the SFU's refresh and coturn's quota agree on this one
// function.
import { createHash, createHmac } from 'node:crypto';
import { NAMESPACE_RE } from './names.ts';

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

/**
 * The subject as it appears in a TURN username: kept as it is when it is short and made of safe
 * characters (letters, digits, . _ @ + -), otherwise replaced by a stable hash ("h.<22 chars>"),
 * so a subject can never inject a ':' or overflow coturn's username field.
 */
export function turnSubject(subject: string): string {
  if (/^[A-Za-z0-9._@+-]{1,64}$/.test(subject)) return subject;
  return 'h.' + createHash('sha256').update(subject).digest('base64url').slice(0, 22);
}

type IssueOptions = {
  secret: string;
  namespace: string;
  /** Who the credentials are for (JWT sub, API key subject): coturn's per-user quota key. */
  subject: string;
  urls: string[];
  ttl?: number;
  now?: number; // unix seconds; injectable for tests
};

/** The validated lifetime and the username "<expiry>:<namespace>:<subject>". */
function turnUsername(opts: IssueOptions): { username: string; ttl: number } {
  const ttl = opts.ttl ?? DEFAULT_TURN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl <= 0) throw new Error(`TURN ttl must be a positive integer of seconds, got ${ttl}`);
  if (!NAMESPACE_RE.test(opts.namespace)) throw new Error(`invalid namespace name "${opts.namespace}"`);
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  return { username: `${now + ttl}:${opts.namespace}:${turnSubject(opts.subject)}`, ttl };
}

export function issueTurnCredentials(opts: IssueOptions): TurnCredentials {
  const { username, ttl } = turnUsername(opts);
  return { urls: opts.urls, username, credential: turnCredential(opts.secret, username), ttl };
}

/**
 * issueTurnCredentials for a hot path (the gateway's credentials endpoint): a subject's username
 * changes once a second (its expiry), so every call of that subject within that second gets the
 * same HMAC. This keeps the last (secret, username) → credential results, one per subject and
 * second, instead of recomputing them per request.
 */
export function credentialIssuer(maxEntries = 4096): typeof issueTurnCredentials {
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
