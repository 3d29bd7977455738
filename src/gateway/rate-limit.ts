// Per-principal rate limits: a fixed window per key (the principal's key, set by authentication),
// counted in this process. A synchronous preHandler hook, so a request that passes costs a Map
// lookup and no promise. (@fastify/rate-limit was used first: its hook awaits the key generator
// and the store, and measured 15–20 % of the credentials endpoint's throughput in bench:api.)
// A 429 carries retry-after and x-ratelimit-limit/-remaining/-reset; successful answers carry no
// rate-limit headers.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './errors.ts';

export interface Verdict {
  allowed: boolean;
  remaining: number;
  /** Seconds until the key's window ends. */
  resetIn: number;
}

export class RateLimiter {
  readonly #windows = new Map<string, { count: number; endsAt: number }>();

  /** `max` requests per key per `windowMs`; at most `maxKeys` keys are remembered. */
  constructor(readonly max: number, readonly windowMs = 60_000, readonly maxKeys = 10_000) {}

  hit(key: string, now = Date.now()): Verdict {
    let w = this.#windows.get(key);
    if (!w || w.endsAt <= now) {
      if (w) this.#windows.delete(key); // re-inserted below: the Map stays ordered by window start
      else if (this.#windows.size >= this.maxKeys) this.#evict(now);
      w = { count: 0, endsAt: now + this.windowMs };
      this.#windows.set(key, w);
    }
    w.count++;
    return { allowed: w.count <= this.max, remaining: Math.max(0, this.max - w.count), resetIn: Math.ceil((w.endsAt - now) / 1000) };
  }

  /** Ended windows go first; if none has ended, the oldest window is forgotten. */
  #evict(now: number): void {
    for (const [k, w] of this.#windows) {
      if (w.endsAt > now) break; // ordered by start, so by end: the rest are alive
      this.#windows.delete(k);
    }
    if (this.#windows.size >= this.maxKeys) this.#windows.delete(this.#windows.keys().next().value!);
  }
}

/** preHandler hook: counts the request against its principal (or its address when anonymous). */
export function rateLimitHook(limiter: RateLimiter) {
  return (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    const v = limiter.hit(req.principal?.key ?? `ip:${req.ip}`);
    if (v.allowed) { done(); return; }
    done(new HttpError(429, 'rate_limited', `rate limit of ${limiter.max} requests per minute exceeded; retry in ${v.resetIn} s`, {
      'retry-after': String(v.resetIn),
      'x-ratelimit-limit': String(limiter.max),
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(v.resetIn),
    }));
  };
}
