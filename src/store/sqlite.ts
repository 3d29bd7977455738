// The embedded driver: one SQLite file (better-sqlite3, synchronous) on one machine. WAL mode
// and a busy timeout let several processes (CLI, gateway, tests) share the file; write
// transactions are BEGIN IMMEDIATE so two writers serialize instead of failing on upgrade.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConstraintError, SqlStore, type Row, type SqlExecutor, type Statement } from './sql-store.ts';
import { StoreError } from './store.ts';

class SqliteExecutor implements SqlExecutor {
  readonly #db: Database.Database;
  readonly #cache = new Map<string, Database.Statement>();

  constructor(path: string) {
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      this.#db = new Database(path, { timeout: 10_000 });
    } catch (e) {
      throw new StoreError(`cannot open SQLite state file ${path}: ${(e as Error).message}`, 'unavailable');
    }
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('foreign_keys = ON');
  }

  #prepare(sql: string): Database.Statement {
    let s = this.#cache.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#cache.set(sql, s);
    }
    return s;
  }

  async query([sql, ...params]: Statement): Promise<Row[]> {
    return this.#prepare(sql).all(...params) as Row[];
  }

  async execute(stmts: Statement[]): Promise<number[]> {
    const run = this.#db.transaction(() => stmts.map(([sql, ...params]) => {
      // DDL cannot be cached across schema changes, and runs once anyway.
      const s = /^\s*(CREATE|DROP|ALTER)\b/i.test(sql) ? this.#db.prepare(sql) : this.#prepare(sql);
      return s.run(...params).changes;
    }));
    try {
      return run.immediate();
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (code.startsWith('SQLITE_CONSTRAINT')) throw new ConstraintError((e as Error).message);
      throw e;
    }
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}

export async function openSqliteStore(path: string, opts: { migrate?: boolean } = {}): Promise<SqlStore> {
  const store = new SqlStore('sqlite', new SqliteExecutor(path));
  if (opts.migrate !== false) await store.migrate();
  return store;
}
