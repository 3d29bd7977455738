// SSH from the host into nodes: the harness's own client key and a known_hosts built from the host
// keys it generated, so host-key checking stays strict even though keys change on every wipe.
import { $ } from 'zx';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { type ClusterConfig, type NodeConfig, keyPath, knownHostsPath } from './config.ts';
import { run } from './host.ts';

export async function ensureClientKey(c: ClusterConfig): Promise<string> {
  const key = keyPath(c);
  if (!existsSync(key)) {
    await run(`generating ssh client key ${key}`, $`ssh-keygen -q -t ed25519 -N ${''} -C ${c.tag} -f ${key}`);
  }
  return readFileSync(`${key}.pub`, 'utf8').trim();
}

export function writeKnownHosts(c: ClusterConfig, nodes: NodeConfig[]): void {
  const lines = nodes.map((n) => {
    const pub = `${n.root}/etc/ssh/ssh_host_ed25519_key.pub`;
    if (!existsSync(pub)) throw new Error(`${n.name}: host key ${pub} missing (node not initialised?)`);
    const [type, key] = readFileSync(pub, 'utf8').trim().split(/\s+/);
    return `${n.name},${n.publicIp},${n.internalIp} ${type} ${key}`;
  });
  writeFileSync(knownHostsPath(c), `${lines.join('\n')}\n`);
}

/** argv for ssh into a node (pure). */
export function sshArgv(c: ClusterConfig, n: NodeConfig, user: string, command: string[] = []): string[] {
  return [
    'ssh', '-F', 'none', '-i', keyPath(c), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${knownHostsPath(c)}`, '-o', 'StrictHostKeyChecking=yes',
    '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR',
    `${user}@${n.publicIp}`, ...command,
  ];
}

export interface ExecResult { stdout: string; stderr: string; code: number }

/** Runs a shell command line on a node; never throws on a non-zero exit (the caller decides). */
export async function sshRun(c: ClusterConfig, n: NodeConfig, cmd: string, user = 'root', timeoutMs = 120_000): Promise<ExecResult> {
  const [bin, ...args] = sshArgv(c, n, user, [cmd]);
  const r = await $({ timeout: timeoutMs, nothrow: true })`${bin} ${args}`;
  return { stdout: r.stdout, stderr: r.stderr, code: r.exitCode ?? -1 };
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 1000 });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('timeout', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(false));
  });
}

export async function waitForSsh(c: ClusterConfig, n: NodeConfig, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (await tcpOpen(n.publicIp, 22)) {
      const r = await sshRun(c, n, 'true', 'root', 10_000);
      if (r.code === 0) return;
      last = r.stderr.trim();
    }
    await new Promise((res) => setTimeout(res, 300));
  }
  throw new Error(`${n.name}: ssh root@${n.publicIp} not ready after ${timeoutMs / 1000}s${last ? `: ${last}` : ''} (log: ${n.dir}/console.log)`);
}
