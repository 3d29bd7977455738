// Who is calling: a JWT (Authorization: Bearer, or for WebSockets the subprotocol pair
// ['Bearer', <jwt>]) or an API key (x-api-key). 401 when credentials are missing or invalid,
// 403 when they are valid but for another namespace (or not an owner where one is required).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiKeyInfo, Store } from '../store/store.ts';
import { TokenError, tokenVerifier, type TokenClaims, type VerificationKey } from '../webrtc/tokens.ts';
import { HttpError } from './errors.ts';

export interface Principal {
  namespace: string;
  subject: string;
  owner: boolean;
  via: 'jwt' | 'api_key';
  /** Rate limits are kept per this key. */
  key: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const WWW_AUTHENTICATE = 'Bearer realm="orama-webrtc"';

function unauthorized(message: string): HttpError {
  return new HttpError(401, 'unauthorized', message, { 'www-authenticate': WWW_AUTHENTICATE });
}

/** A bounded cache of verified tokens, each kept no longer than its own exp (nor 60 s). */
class VerifiedTokens {
  readonly #max: number;
  readonly #map = new Map<string, { principal: Principal; until: number }>();
  constructor(max: number) { this.#max = max; }
  get(token: string, nowMs: number): Principal | undefined {
    const hit = this.#map.get(token);
    if (!hit) return undefined;
    if (hit.until <= nowMs) { this.#map.delete(token); return undefined; }
    return hit.principal;
  }
  set(token: string, principal: Principal, until: number): void {
    if (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value!); // oldest first
    this.#map.set(token, { principal, until });
  }
}

const API_KEY_CACHE_MS = 5000;

export class Authenticator {
  readonly #verify: (token: string) => TokenClaims;
  readonly #tokens: VerifiedTokens | null;
  readonly #apiKeys = new Map<string, { info: ApiKeyInfo | null; until: number }>();

  constructor(private readonly namespace: string, jwt: VerificationKey, private readonly store: Store,
    opts: { tokenCache?: number } = {}) {
    this.#verify = tokenVerifier(jwt);
    this.#tokens = opts.tokenCache === 0 ? null : new VerifiedTokens(opts.tokenCache ?? 10_000);
  }

  /**
   * The principal of a request, or an HttpError (401/403). Synchronous for JWTs and for API keys
   * seen in the last API_KEY_CACHE_MS; a promise only when the store must be asked.
   */
  authenticate(req: FastifyRequest): Principal | Promise<Principal> {
    const token = bearerToken(req);
    if (token !== undefined) return this.#inNamespace(this.#fromToken(token));
    const apiKey = req.headers['x-api-key'];
    if (typeof apiKey === 'string' && apiKey.length > 0) {
      const p = this.#fromApiKey(apiKey);
      return p instanceof Promise ? p.then((q) => this.#inNamespace(q)) : this.#inNamespace(p);
    }
    throw unauthorized('missing credentials: send Authorization: Bearer <jwt> or x-api-key');
  }

  #inNamespace(principal: Principal): Principal {
    if (principal.namespace !== this.namespace) {
      throw new HttpError(403, 'forbidden', `a principal of namespace "${principal.namespace}" may not use namespace "${this.namespace}"`);
    }
    return principal;
  }

  #fromToken(token: string): Principal {
    const now = Date.now();
    const hit = this.#tokens?.get(token, now);
    if (hit) return hit;
    let claims;
    try {
      claims = this.#verify(token);
    } catch (e) {
      if (e instanceof TokenError) throw unauthorized(e.message);
      throw e;
    }
    const principal: Principal = { namespace: claims.namespace, subject: claims.sub, owner: claims.owner, via: 'jwt', key: `jwt:${claims.namespace}:${claims.sub}` };
    this.#tokens?.set(token, principal, Math.min(claims.exp * 1000, now + 60_000));
    return principal;
  }

  #fromApiKey(key: string): Principal | Promise<Principal> {
    const entry = this.#apiKeys.get(key);
    if (entry && entry.until > Date.now()) return principalOfKey(entry.info);
    // Revocation reaches a running gateway within API_KEY_CACHE_MS.
    return this.store.verifyApiKey(key).then((info) => {
      if (this.#apiKeys.size > 10_000) this.#apiKeys.clear();
      this.#apiKeys.set(key, { info, until: Date.now() + API_KEY_CACHE_MS });
      return principalOfKey(info);
    });
  }
}

function principalOfKey(i: ApiKeyInfo | null): Principal {
  if (!i) throw unauthorized('invalid or revoked API key');
  return { namespace: i.namespace, subject: i.subject, owner: i.owner, via: 'api_key', key: `key:${i.id}` };
}

/** Authorization: Bearer <jwt>, or on a WebSocket upgrade the subprotocols "Bearer, <jwt>". */
export function bearerToken(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : '';
  }
  const proto = req.headers['sec-websocket-protocol'];
  if (typeof proto === 'string') {
    const parts = proto.split(',').map((s) => s.trim());
    const i = parts.indexOf('Bearer');
    if (i >= 0) return parts[i + 1] ?? '';
  }
  return undefined;
}

/** onRequest hook factory: authenticate, and require an owner when asked. Callback style, so a
 * cached or JWT principal costs no promise. */
export function requirePrincipal(auth: Authenticator, opts: { owner?: boolean } = {}) {
  const accept = (req: FastifyRequest, p: Principal): void => {
    if (opts.owner && !p.owner) throw new HttpError(403, 'forbidden', `subject "${p.subject}" is not an owner of namespace "${p.namespace}"`);
    req.principal = p;
  };
  return (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    let p: Principal | Promise<Principal>;
    try {
      p = auth.authenticate(req);
      if (!(p instanceof Promise)) { accept(req, p); done(); return; }
    } catch (e) {
      done(e as Error);
      return;
    }
    p.then((q) => { accept(req, q); done(); }).catch((e: Error) => done(e));
  };
}
