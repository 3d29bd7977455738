// The part of autocannon's API bench/api.ts uses (the package ships no types; @types/autocannon
// is not installed).
declare module 'autocannon' {
  namespace autocannon {
    interface Options {
      url: string;
      method?: string;
      headers?: Record<string, string>;
      body?: string;
      duration?: number;
      connections?: number;
      pipelining?: number;
      /** Requests cycled through by every connection (autocannon's `requests` option). */
      requests?: { method?: string; path?: string; headers?: Record<string, string>; body?: string }[];
    }
    interface Result {
      requests: { average: number; total: number };
      latency: { p50: number; p99: number };
      non2xx: number;
      errors: number;
      timeouts: number;
    }
  }
  function autocannon(opts: autocannon.Options): Promise<autocannon.Result>;
  export default autocannon;
}
