// Shell on test-cluster nodes for test suites: a failing command throws an error that names the
// node, the user, the command and its output, so a red test says what broke where.
import { sshExec } from '../../src/cluster/cluster.ts';
import { until } from './poll.ts';

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

/** Polls until `fn` resolves true, or throws naming `what` (poll.ts `until`, for a yes/no probe). */
export async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  await until(what, timeoutMs, fn, (v) => v === true);
}

/**
 * Binds a UDP socket on `ip` for each port (as root on the node), touches `ready` once all are
 * bound, counts what each port receives for `seconds`, and resolves to { port: count }.
 */
export function udpListener(node: string, ip: string, ports: number[], ready: string, seconds: number): Promise<Record<number, number>> {
  return onNode(node, `rm -f ${ready}; timeout ${seconds + 10} python3 -c '
import json, select, socket, time
socks = {}
for p in ${JSON.stringify([...new Set(ports)])}:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("${ip}", p))
    socks[s] = p
counts = {p: 0 for p in socks.values()}
open("${ready}", "w").close()
end = time.time() + ${seconds}
while time.time() < end:
    r, _, _ = select.select(list(socks), [], [], 0.2)
    for s in r:
        s.recv(2048)
        counts[socks[s]] += 1
print(json.dumps(counts))'; rm -f ${ready}`).then((out) => JSON.parse(out));
}
