// Opens a store from a config object (gateway.json's `store`) or a CLI `--state` value:
// a file path → SQLite; `http(s)://host:port[,http(s)://…]` → rqlite.
import { readFileSync } from 'node:fs';
import type { Store } from './store.ts';
import { StoreError } from './store.ts';

export type StoreConfig =
  | { driver: 'sqlite'; path: string }
  | { driver: 'rqlite'; urls: string[]; username?: string; password_file?: string; timeout_ms?: number; retry_for_ms?: number };

export const DEFAULT_STATE_PATH = '/var/lib/orama/state.db';

/**
 * What is wrong with a --state value (undefined: nothing). It is a SQLite file path or http(s)://
 * rqlite URL(s); anything else would still open a SQLite database, somewhere no one looks: an
 * empty value or `:memory:` a temporary one, lost when the command ends; `ftp://x` or `file:x` a
 * file of that relative path in the working directory.
 */
export function stateProblem(s: string): string | undefined {
  const want = 'the operator store is a SQLite file path or http(s):// rqlite URL(s)';
  if (!s.trim()) return `empty; ${want}`;
  if (/^https?:\/\//i.test(s)) return undefined;
  if (s.trim() === ':memory:') return `SQLite's in-memory database is gone when the command ends; ${want}`;
  const scheme = /^([a-z][a-z0-9+.-]*):(\/\/)?/i.exec(s);
  if (scheme && (scheme[2] || scheme[1].toLowerCase() === 'file')) return `${scheme[1]}: is no store's URL scheme; ${want}`;
  return undefined;
}

/** The store of a command: --state (or ORAMA_STATE, or the default path); a value that is none is an error naming it. */
export function stateFromArg(state: string | undefined): StoreConfig {
  const [s, from] = state !== undefined ? [state, '--state'] : process.env.ORAMA_STATE !== undefined ? [process.env.ORAMA_STATE, 'ORAMA_STATE'] : [DEFAULT_STATE_PATH, 'the default state'];
  const problem = stateProblem(s);
  if (problem) throw new StoreError(`${from} ${JSON.stringify(s)}: ${problem}`, 'invalid');
  if (/^https?:\/\//i.test(s)) return { driver: 'rqlite', urls: s.split(',').map((u) => u.trim()).filter(Boolean) };
  return { driver: 'sqlite', path: s };
}

export async function openStore(config: StoreConfig, opts: { migrate?: boolean } = {}): Promise<Store> {
  if (config.driver === 'sqlite') {
    const { openSqliteStore } = await import('./sqlite.ts');
    return openSqliteStore(config.path, opts);
  }
  if (config.driver === 'rqlite') {
    let password: string | undefined;
    if (config.password_file) {
      try { password = readFileSync(config.password_file, 'utf8').trim(); } catch (e) {
        throw new StoreError(`store.password_file: cannot read ${config.password_file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'invalid');
      }
    }
    const { openRqliteStore } = await import('./rqlite.ts');
    return openRqliteStore(config.urls, { ...opts, username: config.username, password, timeoutMs: config.timeout_ms, retryForMs: config.retry_for_ms });
  }
  throw new StoreError(`store.driver: must be "sqlite" or "rqlite", got ${JSON.stringify((config as { driver: unknown }).driver)}`, 'invalid');
}
