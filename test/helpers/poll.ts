// Waiting in tests, one way: poll a probe until its value is acceptable, bounded.

/**
 * Polls `probe` every `everyMs` until `ok` accepts its value (default: truthy), and resolves with
 * that value. Past `timeoutMs` it throws, naming `what` and the last value seen. A probe that
 * throws counts as "not yet"; its error is the last value.
 */
export async function until<T>(what: string, timeoutMs: number, probe: () => T | Promise<T>, ok: (value: T) => boolean = (v) => Boolean(v), everyMs = 250): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let last: unknown;
    try {
      const value = await probe();
      if (ok(value)) return value as NonNullable<T>;
      last = value;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Polls `check` every 50 ms for at most `ms`; resolves with its last answer (for a test to assert on). */
export async function settles(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return check();
}
