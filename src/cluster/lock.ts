// One cluster operation at a time across processes: two `up`s racing would start two launchers on
// one node directory, an `up` racing a `down` would leave half a cluster.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

function holder(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch { return undefined; }
}

export async function withLock<T>(path: string, what: string, fn: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (e: any) {
      if (e.code !== 'EEXIST') throw new Error(`${what}: cannot create lock ${path}: ${e.message}`);
      const pid = holder(path);
      if (pid === process.pid) throw new Error(`${what}: lock ${path} already held by this process (nested cluster operation)`);
      // A lock left by a dead process (crash, SIGKILL) is stale.
      if (pid === undefined) { rmSync(path, { force: true }); continue; }
      if (Date.now() > deadline) throw new Error(`${what}: lock ${path} held by PID ${pid} for over ${timeoutMs / 1000}s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try { return await fn(); } finally { rmSync(path, { force: true }); }
}
