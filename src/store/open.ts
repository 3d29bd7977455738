// Opens a store from a config object (gateway.json's `store`) or a CLI `--state` value:
// a file path → SQLite; `http(s)://host:port[,http(s)://…]` → rqlite.
import { readFileSync } from 'node:fs';
import type { Store } from './store.ts';
import { StoreError } from './store.ts';

export type StoreConfig =
  | { driver: 'sqlite'; path: string }
  | { driver: 'rqlite'; urls: string[]; username?: string; password_file?: string; timeout_ms?: number; retry_for_ms?: number };

export const DEFAULT_STATE_PATH = '/var/lib/orama/state.db';

export function stateFromArg(state: string | undefined): StoreConfig {
  const s = state ?? process.env.ORAMA_STATE ?? DEFAULT_STATE_PATH;
  if (/^https?:\/\//.test(s)) return { driver: 'rqlite', urls: s.split(',').map((u) => u.trim()).filter(Boolean) };
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
