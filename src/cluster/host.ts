// Host-side primitives shared by the cluster's nouns: running a command with an error that names
// what was being done, and undoing mounts.
import { $, type ProcessPromise } from 'zx';
import { readFileSync } from 'node:fs';

$.verbose = false;
$.quiet = true;

/** Awaits a zx command; on failure throws an error naming the task, the command and its stderr. */
export async function run(what: string, p: ProcessPromise): Promise<string> {
  try {
    return (await p).stdout;
  } catch (e: any) {
    const stderr = String(e?.stderr ?? e?.message ?? e).trim().split('\n').slice(-15).join('\n');
    throw new Error(`${what}: \`${p.cmd}\` failed (exit ${e?.exitCode ?? '?'}):\n${stderr}`);
  }
}

/** Mount points at or below `dir`, deepest first (the order they must be unmounted in). */
export function mountsUnder(dir: string): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => unescape(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .reverse();
}

export async function umountUnder(dir: string): Promise<void> {
  for (const m of mountsUnder(dir)) await run(`unmounting ${m}`, $`umount ${m}`);
}
