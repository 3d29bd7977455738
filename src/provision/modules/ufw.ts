// ufw: the firewall as a desired SET of rules owned by the tool. Every rule we add carries the
// comment "orama:<set>", so the module can tell its own rules apart, show additions AND removals,
// and close a port whose rule left the desired set (Ansible's ufw module cannot). Facts come from
// /etc/ufw files (no slow `ufw status` on a no-op run).
import { shellQuote } from '../transport/transport.ts';
import { defineModule, noChange, type Change, type Planned, type Step } from './module.ts';

export interface UfwRule {
  rule?: 'allow' | 'deny' | 'reject' | 'limit';
  /**
   * Destination port: 22, a range "49152:49951" (or "-"), a list "4001,4002", a mix "4001,5000:5010".
   * Absent = every port (e.g. everything from the WireGuard subnet).
   */
  port?: string | number;
  proto?: 'tcp' | 'udp' | 'any';
  /** A list means one rule per source (e.g. every other node's WireGuard address). */
  from?: string | string[];
  /** Source port, same syntax as port (needs proto tcp or udp). */
  from_port?: string | number;
  /** Destination address or network; absent = any. */
  to?: string;
  /** Incoming interface: ufw's `in on wg0`. */
  interface?: string;
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

/** A rule in ufw's own stored form (what /etc/ufw/user.rules says), "any" for every wildcard. */
interface Tuple {
  action: string;
  proto: string;
  dport: string;
  dst: string;
  sport: string;
  src: string;
  iface?: string;
}

const ANY = new Set(['any', '0.0.0.0/0', '::/0']);
const IFACE = /^[a-z0-9_.-]{1,15}$/;

/** ufw's human_sort: digit runs compare as numbers, the rest case-insensitively. */
function humanCmp(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (i % 2) {
      const d = Number(pa[i]) - Number(pb[i]);
      if (d) return d;
    } else {
      const x = pa[i].toLowerCase();
      const y = pb[i].toLowerCase();
      if (x !== y) return x < y ? -1 : 1;
    }
  }
  return pa.length - pb.length;
}

/** Ports as ufw stores them: `-` → `:` in ranges, a list in ufw's sort order ("5000:5010,4001" → "4001,5000:5010"). */
function normPorts(p: string | number | undefined): string {
  if (p === undefined || p === 'any') return 'any';
  return String(p).replace(/-/g, ':').split(',').sort(humanCmp).join(',');
}

/** Addresses as ufw stores IPv4 ones: no /32, a network by its network address (10.0.0.7/24 → 10.0.0.0/24). */
function normAddr(a: string | undefined): string {
  if (a === undefined || ANY.has(a)) return 'any';
  const m = /^((?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3})(?:\/(\d{1,2}))?$/.exec(a);
  if (!m) return a;
  const octets = m[1].split('.').map(Number);
  if (octets.some((o) => o > 255) || m[2] === undefined) return a;
  const bits = Number(m[2]);
  if (bits > 32) return a;
  if (bits === 32) return m[1];
  const ip = octets.reduce((n, o) => n * 256 + o, 0);
  const size = 2 ** (32 - bits);
  const net = ip - (ip % size);
  const addr = [24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join('.');
  return bits === 0 ? 'any' : `${addr}/${bits}`;
}

function tupleOf(r: UfwRule): Tuple {
  return {
    action: r.rule ?? 'allow',
    proto: r.proto ?? 'any',
    dport: normPorts(r.port),
    dst: normAddr(r.to),
    sport: normPorts(r.from_port),
    src: normAddr(Array.isArray(r.from) ? r.from.join(',') : r.from),
    iface: r.interface || undefined,
  };
}

/**
 * The identity of a rule: `allow 22/tcp from any`, `allow any/any from 10.0.0.0/24` (these stay exactly as
 * they always were: live nodes carry them), extended only by what a rule sets:
 * `allow 20000:20499/udp from 10.0.0.1 port 49152:49951 to 10.0.0.2 on wg0`.
 */
function keyOf(t: Tuple): string {
  let key = `${t.action} ${t.dport}/${t.proto} from ${t.src}`;
  if (t.sport !== 'any') key += ` port ${t.sport}`;
  if (t.dst !== 'any') key += ` to ${t.dst}`;
  if (t.iface) key += ` on ${t.iface}`;
  return key;
}

function parseKey(key: string): Tuple | undefined {
  const m = /^(\S+) (\S+)\/(\S+) from (\S+)(?: port (\S+))?(?: to (\S+))?(?: on (\S+))?$/.exec(key);
  if (!m) return undefined;
  return { action: m[1], dport: m[2], proto: m[3], src: m[4], sport: m[5] ?? 'any', dst: m[6] ?? 'any', iface: m[7] };
}

/** The words of `ufw <spec>`; `ufw delete <spec>` takes the same words. */
function specOf(t: Tuple): string {
  const words = [t.action];
  if (t.iface) words.push('in', 'on', shellQuote(t.iface));
  if (t.proto !== 'any') words.push('proto', t.proto);
  words.push('from', shellQuote(t.src));
  if (t.sport !== 'any') words.push('port', t.sport);
  words.push('to', shellQuote(t.dst));
  if (t.dport !== 'any') words.push('port', t.dport);
  return words.join(' ');
}

export function ruleKey(r: UfwRule): string {
  return keyOf(tupleOf(r));
}

function ruleSpec(r: UfwRule): string {
  return specOf(tupleOf(r));
}

export function keyToSpec(key: string): string {
  return specOf(parseKey(key)!);
}

/** Why ufw (iptables multiport) would refuse these ports, if it would. */
function portProblem(ports: string, what: string): string | undefined {
  let count = 0;
  for (const item of ports.split(',')) {
    const m = /^(\d+)(?::(\d+))?$/.exec(item);
    if (!m) return `${what} "${ports}" is not a port, a range or a comma list of them`;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 1 || hi > 65535) return `${what} ${item} is outside 1-65535`;
    if (m[2] !== undefined && lo >= hi) return `${what} range ${item}: the low end must be below the high end`;
    count += m[2] === undefined ? 1 : 2;
  }
  if (count > 15) return `${what} ${ports} names ${count} ports: at most 15 per side (a range counts as 2)`;
  return undefined;
}

function ruleProblem(r: UfwRule): string | undefined {
  const t = tupleOf(r);
  const multi = (p: string) => /[,:]/.test(p);
  const problem =
    (t.dport !== 'any' && portProblem(t.dport, 'port')) ||
    (t.sport !== 'any' && portProblem(t.sport, 'source port')) ||
    (multi(t.dport) && t.proto === 'any' && `port ${/,/.test(t.dport) ? 'list' : 'range'} ${t.dport} needs proto: tcp or udp`) ||
    (t.sport !== 'any' && t.proto === 'any' && `source port ${t.sport} needs proto: tcp or udp`) ||
    (t.iface !== undefined && (!IFACE.test(t.iface) || t.iface === '.' || t.iface === '..') && `interface "${t.iface}" must match ${IFACE.source}`);
  return problem ? `ufw rule "${keyOf(t)}": ${problem}` : undefined;
}

/** Does this rule let a new ssh connection to `port` in? Rules bound to an interface or a source port do not count. */
function allowsSsh(key: string, port: number): boolean {
  const t = parseKey(key);
  if (!t || (t.action !== 'allow' && t.action !== 'limit') || (t.proto !== 'tcp' && t.proto !== 'any')) return false;
  if (t.iface || t.sport !== 'any' || t.dport === 'any') return false;
  return t.dport.split(',').some((item) => {
    const [lo, hi = lo] = item.split(':').map(Number);
    return lo <= port && port <= hi;
  });
}

export function parseUserRules(text: string): UfwFacts['rules'] {
  const out: UfwFacts['rules'] = [];
  for (const line of text.split('\n')) {
    // ### tuple ### <action> <proto> <dport> <dst> <sport> <src> <direction>[_<iface>] [comment=<hex>]
    // ### tuple ### allow udp 20000:20499 10.0.0.2 49152:49951 10.0.0.1 in_wg0 comment=6f72...
    // (9 fields = an application-profile rule, never ours; "in_eth0!out_eth1" = a route rule.)
    const m = /^### tuple ### (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (in(?:_([^\s!]+))?)(?: comment=([0-9a-f]+))?\s*$/.exec(line);
    if (!m) continue;
    const [, action, proto, dport, dst, sport, src, , iface] = m;
    const comment = m[9] ? Buffer.from(m[9], 'hex').toString('utf8') : '';
    const set = comment.startsWith('orama:') ? comment.slice(6) : undefined;
    const any = (x: string) => (ANY.has(x) ? 'any' : x);
    out.push({ key: keyOf({ action, proto, dport, dst: any(dst), sport: any(sport), src: any(src), iface }), set });
  }
  return out;
}

/** Rules as ufw has them: a rule whose `from` is a list becomes one rule per source. */
export function expandRules(rules: UfwRule[]): (UfwRule & { from?: string })[] {
  return rules.flatMap((r) => (Array.isArray(r.from) ? r.from.map((from) => ({ ...r, from })) : [r as UfwRule & { from?: string }]));
}

/**
 * ufw rewrites /etc/ufw/user.rules on every command and takes no lock: two runs on one node (two
 * namespaces enabled at once) are serialised here, per node, by flock(1).
 */
export const UFW_LOCK = '/run/lock/orama-provision-ufw.lock';
const locked = (cmd: string): Step => ({ script: `flock -w 120 ${UFW_LOCK} ${cmd}`, display: cmd });

export function planUfw(args: UfwArgs, f: UfwFacts): Planned {
  if (!f.installed) return { changes: [], steps: [], failed: 'ufw is not installed (/etc/ufw/ufw.conf missing)' };
  const a = { ...args, rules: args.rules && expandRules(args.rules) };
  const changes: Change[] = [];
  const steps: Step[] = [];
  const tag = `orama:${a.set}`;
  for (const r of a.rules ?? []) {
    const problem = ruleProblem(r);
    if (problem) return { changes: [], steps: [], failed: problem };
  }
  if (a.rules) {
    const desired = new Map(a.rules.map((r) => [ruleKey(r), r]));
    const ours = new Set(f.rules.filter((r) => r.set === a.set).map((r) => r.key));
    // ufw keeps one copy of identical rules: one owned by another set already does the job.
    const anyOwner = new Set(f.rules.map((r) => r.key));
    for (const [key, r] of desired) {
      if (ours.has(key) || anyOwner.has(key)) continue;
      changes.push({ action: '+', resource: `ufw rule ${key}`, detail: `set ${a.set}` });
      steps.push(locked(`ufw ${ruleSpec(r)} comment ${shellQuote(tag)}`));
    }
    const sshPort = a.ssh_port ?? f.sshPort ?? 22;
    const opensSsh = (k: string) => allowsSsh(k, sshPort);
    const remaining = [...f.rules.filter((r) => r.set !== a.set).map((r) => r.key), ...desired.keys()];
    if (f.enabled && f.defaultIncoming !== 'allow' && [...ours].some((k) => !desired.has(k) && opensSsh(k)) && !remaining.some(opensSsh)) {
      return { changes: [], steps: [], failed: `refusing to remove the last rule allowing ssh port ${sshPort}/tcp from an enabled deny-by-default firewall: the engine would lock itself out` };
    }
    for (const key of ours) {
      if (desired.has(key)) continue;
      changes.push({ action: '-', resource: `ufw rule ${key}`, detail: `set ${a.set}: no longer desired, port closes` });
      steps.push(locked(`ufw delete ${keyToSpec(key)}`));
    }
  }
  for (const [dir, want, have] of [['incoming', a.default_incoming, f.defaultIncoming], ['outgoing', a.default_outgoing, f.defaultOutgoing]] as const) {
    if (want && want !== have) {
      changes.push({ action: '~', resource: `ufw default ${dir}`, detail: `${have ?? '-'} → ${want}` });
      steps.push(locked(`ufw default ${want} ${dir}`));
    }
  }
  if (a.state === 'enabled' && !f.enabled) {
    const sshPort = a.ssh_port ?? f.sshPort ?? 22;
    const allRules = new Set([...f.rules.map((r) => r.key), ...(a.rules ?? []).map(ruleKey)]);
    const incoming = a.default_incoming ?? f.defaultIncoming;
    const sshOpen = [...allRules].some((k) => allowsSsh(k, sshPort));
    if (incoming !== 'allow' && !sshOpen) {
      return { changes: [], steps: [], failed: `refusing to enable ufw: no rule allows ssh port ${sshPort}/tcp, the engine would lock itself out (add { port: ${sshPort}, proto: tcp } to rules)` };
    }
    changes.push({ action: '~', resource: 'ufw', detail: 'disabled → enabled' });
    steps.push(locked('ufw --force enable'));
  } else if (a.state === 'disabled' && f.enabled) {
    changes.push({ action: '~', resource: 'ufw', detail: 'enabled → disabled' });
    steps.push(locked('ufw disable'));
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

/** A port, a range (":" or "-") or a comma list of them. */
const PORTS = '^[0-9]+([:-][0-9]+)?(,[0-9]+([:-][0-9]+)?)*$';

export default defineModule<UfwArgs, UfwFacts>({
  name: 'ufw',
  batchFacts: true,
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
          anyOf: [{ required: ['port'] }, { required: ['from'] }, { required: ['to'] }, { required: ['interface'] }],
          properties: {
            rule: { enum: ['allow', 'deny', 'reject', 'limit'] },
            port: { type: ['string', 'integer'], pattern: PORTS },
            proto: { enum: ['tcp', 'udp', 'any'] },
            from: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }] },
            from_port: { type: ['string', 'integer'], pattern: PORTS },
            to: { type: 'string' },
            interface: { type: 'string', pattern: IFACE.source },
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
