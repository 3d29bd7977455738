// Shell on test-cluster nodes for test suites: a failing command throws an error that names the
// node, the user, the command and its output, so a red test says what broke where.
import { sshExec } from '../../src/cluster/cluster.ts';

export async function onNode(node: string, cmd: string, user = 'root'): Promise<string> {
  const r = await sshExec(node, cmd, { user });
  if (r.code !== 0) {
    throw new Error(`${user}@${node}: \`${cmd}\` exited ${r.code}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`);
  }
  return r.stdout.trim();
}

/** Exit code only, for commands expected to fail (a blocked port, a stopped node). */
export async function exitCode(node: string, cmd: string, user = 'root'): Promise<number> {
  return (await sshExec(node, cmd, { user })).code;
}

/** Polls until `fn` resolves true, or throws naming `what`. */
export async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
