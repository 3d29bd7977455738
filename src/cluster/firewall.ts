// Host firewall rules that keep nodes inside their bridges: no new connection to the host (it has
// listeners on 0.0.0.0 that are not ours) and nothing routed beyond. Each rule carries the cluster's
// comment tag, so `down` removes exactly these and nothing else.
import { $ } from 'zx';
import type { ClusterConfig } from './config.ts';
import { run } from './host.ts';

const TOOLS = ['iptables', 'ip6tables'] as const;

/** Rules in the order they must appear at the top of their chains (pure: tested by value). */
export function firewallRules(c: ClusterConfig): string[][] {
  const tag = ['-m', 'comment', '--comment', c.tag];
  const rules: string[][] = [];
  for (const br of [c.pubBridge, c.intBridge]) {
    rules.push(['INPUT', '-i', br, '-m', 'conntrack', '--ctstate', 'NEW', ...tag, '-j', 'REJECT']);
    // With br_netfilter, node-to-node frames on one bridge traverse FORWARD (in = out = bridge):
    // those are the cluster's own traffic and pass; anything else in or out of a bridge is dropped.
    rules.push(['FORWARD', '-i', br, '-o', br, ...tag, '-j', 'ACCEPT']);
    rules.push(['FORWARD', '-i', br, ...tag, '-j', 'DROP']);
    rules.push(['FORWARD', '-o', br, ...tag, '-j', 'DROP']);
  }
  return rules;
}

export async function ensureFirewall(c: ClusterConfig): Promise<void> {
  for (const tool of TOOLS) {
    const rules = firewallRules(c);
    const present = await Promise.all(rules.map(async ([chain, ...spec]) =>
      (await $`${tool} -w -C ${chain} ${spec}`.nothrow()).exitCode === 0));
    if (present.every(Boolean)) continue;
    // Partially present means an interrupted run: start from a clean slate so the order holds.
    await removeFirewall(c, [tool]);
    const perChain = new Map<string, number>();
    for (const [chain, ...spec] of rules) {
      const pos = (perChain.get(chain) ?? 0) + 1;
      perChain.set(chain, pos);
      await run(`adding ${tool} rule to ${chain}`, $`${tool} -w -I ${chain} ${pos} ${spec}`);
    }
  }
}

/** Current rules (in `-S` form) carrying this cluster's tag. */
export async function taggedRules(c: ClusterConfig, tools: readonly string[] = TOOLS): Promise<{ tool: string; rule: string[] }[]> {
  const found: { tool: string; rule: string[] }[] = [];
  for (const tool of tools) {
    const out = await run(`listing ${tool} rules`, $`${tool} -w -S`);
    for (const line of out.split('\n')) {
      // Our rules have no spaces inside arguments; iptables quotes the comment anyway.
      const words = line.split(' ').map((w) => w.replace(/^"(.*)"$/, '$1'));
      const i = words.indexOf('--comment');
      if (words[0] === '-A' && i > 0 && words[i + 1] === c.tag) found.push({ tool, rule: words.slice(1) });
    }
  }
  return found;
}

export async function removeFirewall(c: ClusterConfig, tools: readonly string[] = TOOLS): Promise<void> {
  for (const { tool, rule } of await taggedRules(c, tools)) {
    await run(`removing ${tool} rule ${rule.join(' ')}`, $`${tool} -w -D ${rule}`);
  }
}
