// A real rqlite cluster on 127.0.0.1 for tests: N rqlited processes, distinct free ports, data
// in a temp dir, started with -bootstrap-expect N and stopped by the PIDs this helper started.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const RQLITED = process.env.RQLITED
  ?? join(process.env.ORAMA_CACHE_DIR ?? '/var/cache/orama-provision', 'bin', 'rqlited');

export interface RqliteNode { id: string; httpUrl: string; raftAddr: string; proc: ChildProcess | null; dir: string; log: string }

export function requireRqlited(): string {
  if (!existsSync(RQLITED)) {
    throw new Error(`rqlited not found at ${RQLITED}: run \`bash .ci/setup.d/rqlite.sh\` (or set RQLITED) — these integration tests need a real rqlite cluster`);
  }
  return RQLITED;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export class RqliteCluster {
  readonly nodes: RqliteNode[] = [];
  readonly root: string;

  /** rqlite -auth file (users), when started with users; the readiness probe then uses `probe`. */
  private authFile?: string;
  private probeAuth?: string;

  private constructor(root: string) { this.root = root; }

  /** `users`: rqlite's -auth list; one of them must be `probe` with the `ready` permission. */
  static async start(size = 3, users?: { username: string; password: string; perms: string[] }[]): Promise<RqliteCluster> {
    const bin = requireRqlited();
    const c = new RqliteCluster(mkdtempSync(join(tmpdir(), 'orama-rqlite-')));
    if (users) {
      c.authFile = join(c.root, 'users.json');
      writeFileSync(c.authFile, JSON.stringify(users), { mode: 0o600 });
      const probe = users.find((u) => u.username === 'probe');
      if (probe) c.probeAuth = 'Basic ' + Buffer.from(`probe:${probe.password}`).toString('base64');
    }
    for (let i = 1; i <= size; i++) {
      const dir = join(c.root, `n${i}`);
      c.nodes.push({ id: `n${i}`, httpUrl: `http://127.0.0.1:${await freePort()}`, raftAddr: `127.0.0.1:${await freePort()}`, proc: null, dir, log: join(c.root, `n${i}.log`) });
    }
    for (const n of c.nodes) c.spawn(bin, n);
    await c.waitReady(30_000);
    return c;
  }

  private spawn(bin: string, n: RqliteNode): void {
    const out = openSync(n.log, 'a');
    n.proc = spawn(bin, [
      '-node-id', n.id,
      '-http-addr', n.httpUrl.replace('http://', ''),
      '-raft-addr', n.raftAddr,
      '-bootstrap-expect', String(this.nodes.length),
      '-join', this.nodes.map((m) => m.raftAddr).join(','),
      '-raft-election-timeout', '500ms',
      '-raft-timeout', '500ms',
      ...(this.authFile ? ['-auth', this.authFile, '-join-as', 'join'] : []),
      n.dir,
    ], { stdio: ['ignore', out, out] });
  }

  get urls(): string[] { return this.nodes.map((n) => n.httpUrl); }

  /** Every running node answers /readyz (it knows a leader). */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const live = this.nodes.filter((n) => n.proc && n.proc.exitCode === null);
      const ok = await Promise.all(live.map(async (n) => {
        try { return (await fetch(`${n.httpUrl}/readyz`, { signal: AbortSignal.timeout(1000), headers: this.probeAuth ? { authorization: this.probeAuth } : {} })).status === 200; } catch { return false; }
      }));
      if (ok.every(Boolean) && ok.length > 0) return;
      if (Date.now() > deadline) {
        const logs = this.nodes.map((n) => `--- ${n.id}\n${existsSync(n.log) ? readFileSync(n.log, 'utf8').slice(-1500) : ''}`).join('\n');
        throw new Error(`rqlite cluster not ready after ${timeoutMs} ms\n${logs}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The node that is leader now, asked of any live node. */
  async leader(): Promise<RqliteNode> {
    for (const n of this.nodes.filter((m) => m.proc && m.proc.exitCode === null)) {
      try {
        const status = await (await fetch(`${n.httpUrl}/status`, { signal: AbortSignal.timeout(1000) })).json() as { store?: { leader?: { node_id?: string } } };
        const id = status.store?.leader?.node_id;
        const leader = this.nodes.find((m) => m.id === id);
        if (leader) return leader;
      } catch { /* ask the next */ }
    }
    throw new Error('no rqlite node knows a leader');
  }

  /** SIGKILL one node by its PID (a crash, not a shutdown). */
  async kill(n: RqliteNode): Promise<void> {
    const p = n.proc;
    if (!p || p.exitCode !== null || !p.pid) return;
    const exited = new Promise((r) => p.once('exit', r));
    process.kill(p.pid, 'SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => {
      const p = n.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null || !p.pid) return;
      const exited = new Promise((r) => p.once('exit', r));
      process.kill(p.pid, 'SIGTERM');
      const t = setTimeout(() => { if (p.exitCode === null && p.pid) process.kill(p.pid, 'SIGKILL'); }, 5000);
      await exited;
      clearTimeout(t);
    }));
    rmSync(this.root, { recursive: true, force: true });
  }
}
