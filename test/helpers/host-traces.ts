// What the host shows of a test cluster, read with the ordinary tools rather than the harness's
// own bookkeeping, so "down leaves nothing behind" is checked independently of the code under test.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { ClusterConfig } from '../../src/cluster/config.ts';

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

export async function hostTraces(c: ClusterConfig): Promise<string[]> {
  const traces: string[] = [];
  const links = sh('ip', ['-o', 'link', 'show']).split('\n').map((l) => l.split(': ')[1]?.split('@')[0]).filter(Boolean);
  for (const l of links) {
    if (l === c.pubBridge || l === c.intBridge || new RegExp(`^${c.ifPrefix}\\d`).test(l)) traces.push(`link ${l}`);
  }
  for (const ns of sh('ip', ['netns', 'list']).split('\n')) if (ns.startsWith(c.netnsPrefix)) traces.push(`netns ${ns}`);
  for (const m of readFileSync('/proc/mounts', 'utf8').split('\n')) if (m.includes(c.stateDir)) traces.push(`mount ${m}`);
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    for (const r of sh(tool, []).split('\n')) if (r.includes(c.tag)) traces.push(`${tool}: ${r}`);
  }
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const dir = `/sys/fs/cgroup/${h}`;
    if (!existsSync(`${dir}/cgroup.procs`)) continue;
    for (const d of readdirSync(dir)) if (d.startsWith(`otc-${c.name}-`)) traces.push(`cgroup ${dir}/${d}`);
  }
  for (const p of sh('ps', ['-eo', 'pid,args']).split('\n')) {
    if (p.includes(c.stateDir) && /systemd-nspawn|launcher\.sh/.test(p)) traces.push(`process ${p.trim()}`);
  }
  return traces;
}
