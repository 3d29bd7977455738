// ufw: the firewall as a desired SET of rules owned by the tool. Every rule we add carries the
// comment "orama:<set>", so the module can tell its own rules apart, show additions AND removals,
// and close a port whose rule left the desired set (Ansible's ufw module cannot). Facts come from
// /etc/ufw files (no slow `ufw status` on a no-op run).
import { shellQuote } from '../transport/transport.ts';
import { defineModule, noChange, type Change, type Planned, type Step } from './module.ts';

export interface UfwRule {
  rule?: 'allow' | 'deny' | 'reject' | 'limit';
  /** Absent = every port (e.g. everything from the WireGuard subnet). */
  port?: string | number;
  proto?: 'tcp' | 'udp' | 'any';
  from?: string;
}

interface UfwArgs {
  set: string;
  rules?: UfwRule[];
  state?: 'enabled' | 'disabled';
  default_incoming?: 'allow' | 'deny' | 'reject';
  default_outgoing?: 'allow' | 'deny' | 'reject';
  /** The port the engine's own SSH connection uses; enabling must never lock us out. */
  ssh_port?: number;
}

export interface UfwFacts {
  installed: boolean;
  enabled: boolean;
  defaultIncoming?: string;
  defaultOutgoing?: string;
  /** Every rule in user.rules: key + owning set (undefined = not ours). */
  rules: { key: string; set?: string }[];
  /** The port the engine itself connects through. */
  sshPort?: number;
}

const POLICY: Record<string, string> = { DROP: 'deny', ACCEPT: 'allow', REJECT: 'reject' };

export function ruleKey(r: UfwRule): string {
  const proto = r.proto ?? 'any';
  const from = r.from && r.from !== 'any' ? r.from : 'any';
  return `${r.rule ?? 'allow'} ${r.port === undefined ? 'any' : String(r.port).replace('-', ':')}/${proto} from ${from}`;
}

function ruleSpec(r: UfwRule): string {
  const proto = r.proto && r.proto !== 'any' ? `proto ${r.proto} ` : '';
  const port = r.port === undefined || r.port === 'any' ? '' : ` port ${String(r.port).replace('-', ':')}`;
  return `${r.rule ?? 'allow'} ${proto}from ${r.from ?? 'any'} to any${port}`;
}

function keyToSpec(key: string): string {
  const m = /^(\S+) (\S+)\/(\S+) from (\S+)$/.exec(key)!;
  return ruleSpec({ rule: m[1] as UfwRule['rule'], port: m[2], proto: m[3] as UfwRule['proto'], from: m[4] });
}

export function parseUserRules(text: string): UfwFacts['rules'] {
  const out: UfwFacts['rules'] = [];
  for (const line of text.split('\n')) {
    // ### tuple ### allow udp 3478 0.0.0.0/0 any 0.0.0.0/0 in comment=6f72...
    const m = /^### tuple ### (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)(?: comment=([0-9a-f]+))?/.exec(line);
    if (!m) continue;
    const [, action, proto, dport, , , src, dir] = m;
    if (!dir.startsWith('in')) continue;
    const from = src === '0.0.0.0/0' || src === '::/0' ? 'any' : src;
    const comment = m[8] ? Buffer.from(m[8], 'hex').toString('utf8') : '';
    const set = comment.startsWith('orama:') ? comment.slice(6) : undefined;
    out.push({ key: `${action} ${dport}/${proto} from ${from}`, set });
  }
  return out;
}

export function planUfw(a: UfwArgs, f: UfwFacts): Planned {
  if (!f.installed) return { changes: [], steps: [], failed: 'ufw is not installed (/etc/ufw/ufw.conf missing)' };
  const changes: Change[] = [];
  const steps: Step[] = [];
  const tag = `orama:${a.set}`;
  const ranged = (a.rules ?? []).find((r) => r.port !== undefined && /[:-]/.test(String(r.port)) && (r.proto ?? 'any') === 'any');
  if (ranged) return { changes: [], steps: [], failed: `ufw rule port range ${ranged.port} needs proto: tcp or udp` };
  if (a.rules) {
    const desired = new Map(a.rules.map((r) => [ruleKey(r), r]));
    const ours = new Set(f.rules.filter((r) => r.set === a.set).map((r) => r.key));
    // ufw keeps one copy of identical rules: one owned by another set already does the job.
    const anyOwner = new Set(f.rules.map((r) => r.key));
    for (const [key, r] of desired) {
      if (ours.has(key) || anyOwner.has(key)) continue;
      changes.push({ action: '+', resource: `ufw rule ${key}`, detail: `set ${a.set}` });
      steps.push({ script: `ufw ${ruleSpec(r)} comment ${shellQuote(tag)}` });
    }
    const sshPort = a.ssh_port ?? f.sshPort ?? 22;
    const allowsSsh = (k: string) => /^(allow|limit) /.test(k) && (k.includes(` ${sshPort}/tcp `) || k.includes(` ${sshPort}/any `));
    const remaining = [...f.rules.filter((r) => r.set !== a.set).map((r) => r.key), ...desired.keys()];
    if (f.enabled && f.defaultIncoming !== 'allow' && [...ours].some((k) => !desired.has(k) && allowsSsh(k)) && !remaining.some(allowsSsh)) {
      return { changes: [], steps: [], failed: `refusing to remove the last rule allowing ssh port ${sshPort}/tcp from an enabled deny-by-default firewall: the engine would lock itself out` };
    }
    for (const key of ours) {
      if (desired.has(key)) continue;
      changes.push({ action: '-', resource: `ufw rule ${key}`, detail: `set ${a.set}: no longer desired, port closes` });
      steps.push({ script: `ufw delete ${keyToSpec(key)}` });
    }
  }
  for (const [dir, want, have] of [['incoming', a.default_incoming, f.defaultIncoming], ['outgoing', a.default_outgoing, f.defaultOutgoing]] as const) {
    if (want && want !== have) {
      changes.push({ action: '~', resource: `ufw default ${dir}`, detail: `${have ?? '-'} → ${want}` });
      steps.push({ script: `ufw default ${want} ${dir}` });
    }
  }
  if (a.state === 'enabled' && !f.enabled) {
    const sshPort = a.ssh_port ?? f.sshPort ?? 22;
    const allRules = new Set([...f.rules.map((r) => r.key), ...(a.rules ?? []).map(ruleKey)]);
    const incoming = a.default_incoming ?? f.defaultIncoming;
    const sshOpen = [...allRules].some((k) => /^(allow|limit) /.test(k) && (k.includes(` ${sshPort}/tcp `) || k.includes(` ${sshPort}/any `)));
    if (incoming !== 'allow' && !sshOpen) {
      return { changes: [], steps: [], failed: `refusing to enable ufw: no rule allows ssh port ${sshPort}/tcp, the engine would lock itself out (add { port: ${sshPort}, proto: tcp } to rules)` };
    }
    changes.push({ action: '~', resource: 'ufw', detail: 'disabled → enabled' });
    steps.push({ script: 'ufw --force enable' });
  } else if (a.state === 'disabled' && f.enabled) {
    changes.push({ action: '~', resource: 'ufw', detail: 'enabled → disabled' });
    steps.push({ script: 'ufw disable' });
  }
  if (!changes.length) return noChange({ set: a.set, rules: f.rules.filter((r) => r.set === a.set).map((r) => r.key) });
  return { changes, steps };
}

const SCRIPT = [
  '[ -f /etc/ufw/ufw.conf ] || { echo missing; exit 0; }',
  'grep -E "^ENABLED=" /etc/ufw/ufw.conf',
  'grep -E "^DEFAULT_(INPUT|OUTPUT)_POLICY=" /etc/default/ufw',
  // ENABLED=yes in the file is only a wish; the loaded chain proves it is enforced.
  'iptables -w -n -L ufw-user-input >/dev/null 2>&1 && echo LOADED=yes',
  'cat /etc/ufw/user.rules 2>/dev/null',
].join('\n');

export function parseUfwFacts(out: string): UfwFacts {
  if (out.startsWith('missing')) return { installed: false, enabled: false, rules: [] };
  const val = (k: string) => new RegExp(`^${k}="?([A-Za-z]+)"?`, 'm').exec(out)?.[1];
  return {
    installed: true,
    enabled: val('ENABLED') === 'yes' && val('LOADED') === 'yes',
    defaultIncoming: POLICY[val('DEFAULT_INPUT_POLICY') ?? ''],
    defaultOutgoing: POLICY[val('DEFAULT_OUTPUT_POLICY') ?? ''],
    rules: parseUserRules(out),
  };
}

export default defineModule<UfwArgs, UfwFacts>({
  name: 'ufw',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['set'],
    properties: {
      set: { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]*$' },
      rules: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          anyOf: [{ required: ['port'] }, { required: ['from'] }],
          properties: {
            rule: { enum: ['allow', 'deny', 'reject', 'limit'] },
            port: { type: ['string', 'integer'], pattern: '^[0-9]+([:-][0-9]+)?$' },
            proto: { enum: ['tcp', 'udp', 'any'] },
            from: { type: 'string' },
          },
        },
      },
      state: { enum: ['enabled', 'disabled'] },
      default_incoming: { enum: ['allow', 'deny', 'reject'] },
      default_outgoing: { enum: ['allow', 'deny', 'reject'] },
      ssh_port: { type: 'integer' },
    },
  },
  async facts(_a, ctx) {
    const r = await ctx.exec(SCRIPT);
    return { ...parseUfwFacts(r.stdout), sshPort: ctx.host.port };
  },
  plan: planUfw,
});
