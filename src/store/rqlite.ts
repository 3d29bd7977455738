// The cluster driver: rqlite (Raft-replicated SQLite) through its HTTP API. Any node accepts a
// request and forwards it to the leader; when a node is down or the cluster is electing a new
// leader, the request moves to the next URL and is retried until `retryForMs` has passed.
// Reads that decide something (port allocation, room affinity, migrations) use level=strong:
// they go through the Raft log, so they see every acknowledged write.
// Multi-statement writes use ?transaction (all or nothing).
//
// Retrying a write whose response was lost can apply it twice; every write the store issues is
// therefore idempotent or guarded (conditional inserts, ON CONFLICT, compare-and-set updates).
import { ConstraintError, SqlStore, type Row, type SqlExecutor, type Statement } from './sql-store.ts';
import { StoreError } from './store.ts';

export interface RqliteOptions {
  /** Per-request timeout. */
  timeoutMs?: number;
  /** How long to keep trying other nodes / waiting for an election before failing. */
  retryForMs?: number;
  /** Basic auth user, if the cluster has auth enabled; the password comes from a file. */
  username?: string;
  password?: string;
}

interface RqliteResult { rows?: Row[]; rows_affected?: number; error?: string }
interface RqliteResponse { results?: RqliteResult[]; error?: string }

class Unavailable extends Error {}

class RqliteExecutor implements SqlExecutor {
  readonly #urls: string[];
  readonly #timeoutMs: number;
  readonly #retryForMs: number;
  readonly #auth: string | undefined;
  readonly #user: string | undefined;
  #preferred = 0; // index of the last URL that answered

  constructor(urls: string[], opts: RqliteOptions) {
    if (urls.length === 0) throw new StoreError('store.urls: at least one rqlite URL is required', 'invalid');
    this.#urls = urls.map((u) => {
      let parsed: URL;
      try { parsed = new URL(u); } catch { throw new StoreError(`store.urls: not a URL: ${JSON.stringify(u)}`, 'invalid'); }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new StoreError(`store.urls: ${u} must be http(s)`, 'invalid');
      return parsed.origin;
    });
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#retryForMs = opts.retryForMs ?? 20_000;
    this.#user = opts.username;
    this.#auth = opts.username ? 'Basic ' + Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64') : undefined;
  }

  async query(stmt: Statement, opts: { strong?: boolean } = {}): Promise<Row[]> {
    const [r] = await this.#post(`/db/query?associative${opts.strong ? '&level=strong' : ''}`, [stmt]);
    if (r.error) throw this.#statementError(r.error);
    return r.rows ?? [];
  }

  async execute(stmts: Statement[]): Promise<number[]> {
    const results = await this.#post('/db/execute?transaction', stmts);
    const failed = results.find((r) => r.error);
    if (failed?.error) throw this.#statementError(failed.error);
    return results.map((r) => r.rows_affected ?? 0);
  }

  async close(): Promise<void> {}

  #statementError(msg: string): Error {
    return /constraint failed/i.test(msg) ? new ConstraintError(msg) : new StoreError(`rqlite: ${msg}`, 'unavailable');
  }

  async #post(path: string, body: Statement[]): Promise<RqliteResult[]> {
    const deadline = Date.now() + this.#retryForMs;
    const failures = new Map<string, string>();
    for (let attempt = 0; ; attempt++) {
      const i = (this.#preferred + attempt) % this.#urls.length;
      const url = this.#urls[i];
      try {
        const results = await this.#once(url + path, body);
        this.#preferred = i;
        return results;
      } catch (e) {
        if (!(e instanceof Unavailable)) throw e;
        failures.set(url, e.message);
      }
      if (Date.now() >= deadline) {
        const detail = [...failures].map(([u, m]) => `${u}: ${m}`).join('; ');
        throw new StoreError(`rqlite unavailable for ${this.#retryForMs} ms (${detail})`, 'unavailable');
      }
      // A full round over every node failed: the cluster is electing, give it a moment.
      if ((attempt + 1) % this.#urls.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
  }

  async #once(url: string, body: Statement[]): Promise<RqliteResult[]> {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.#auth ? { authorization: this.#auth } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      throw new Unavailable(cause ?? (e as Error).name);
    }
    const text = await res.text().catch(() => '');
    if (res.status === 503 || res.status >= 500) throw new Unavailable(`HTTP ${res.status} ${text.trim().slice(0, 200)}`);
    if (res.status === 401 || res.status === 403) {
      const who = this.#user ? `user "${this.#user}" refused` : 'no user given, and the database requires one';
      throw new StoreError(`rqlite ${new URL(url).origin}: HTTP ${res.status}: ${who} (check the store's username and password_file)`, 'unavailable');
    }
    if (res.status !== 200) throw new StoreError(`rqlite ${new URL(url).origin}: HTTP ${res.status} ${text.trim().slice(0, 200)}`, 'unavailable');
    let parsed: RqliteResponse;
    try { parsed = JSON.parse(text) as RqliteResponse; } catch { throw new Unavailable('response is not JSON'); }
    // A top-level error is the node's failure to reach the leader (or leadership lost mid-commit).
    if (parsed.error) throw new Unavailable(parsed.error);
    if (!Array.isArray(parsed.results) || parsed.results.length !== body.length) throw new Unavailable('malformed response');
    return parsed.results;
  }
}

export async function openRqliteStore(urls: string[], opts: RqliteOptions & { migrate?: boolean } = {}): Promise<SqlStore> {
  const store = new SqlStore('rqlite', new RqliteExecutor(urls, opts));
  if (opts.migrate !== false) await store.migrate();
  return store;
}
