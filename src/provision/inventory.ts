// Inventory: Ansible's YAML shape (all → hosts / vars / children), group_vars/ and host_vars/
// folders beside the file, and Ansible's host patterns (a:b union, a:&b intersection, a:!b exclusion).
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ProvisionError, type Place } from './errors.ts';
import { loadYaml, placeOf } from './source.ts';
import { validate } from './schema.ts';

/** Keys of a host entry that describe how to reach it; every other key is a host variable. */
export const CONNECTION_KEYS = ['address', 'port', 'user', 'key', 'known_hosts', 'become', 'connection'] as const;
/** Ansible's inventory variables for the same things (ansible_python_interpreter is ignored). */
const ANSIBLE_CONNECTION_VARS: [string, string][] = [
  ['address', 'ansible_host'], ['port', 'ansible_port'], ['user', 'ansible_user'],
  ['key', 'ansible_ssh_private_key_file'], ['become', 'ansible_become'], ['connection', 'ansible_connection'],
];

export interface Host {
  name: string;
  address: string;
  port: number;
  user: string;
  key?: string;
  knownHosts?: string;
  become: boolean;
  connection: 'ssh' | 'local';
  vars: Record<string, unknown>;
  /** Groups from the outermost (all) to the innermost, for variable precedence. */
  groups: string[];
}

export interface Group {
  name: string;
  hosts: Set<string>;
  children: string[];
  parents: string[];
  vars: Record<string, unknown>;
}

const groupSchema: object = {
  type: 'object',
  additionalProperties: false,
  properties: {
    hosts: { type: ['object', 'null'], additionalProperties: { type: ['object', 'null'] } },
    vars: { type: ['object', 'null'] },
    children: { type: ['object', 'null'], additionalProperties: { $ref: '#/definitions/group' } },
  },
};
const inventorySchema: object = {
  type: 'object',
  additionalProperties: false,
  required: ['all'],
  definitions: { group: groupSchema },
  properties: { all: { $ref: '#/definitions/group' } },
};
const hostSchema: object = {
  type: 'object',
  properties: {
    address: { type: 'string', minLength: 1 },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    user: { type: 'string', minLength: 1 },
    key: { type: 'string' },
    known_hosts: { type: 'string' },
    become: { type: 'boolean' },
    connection: { enum: ['ssh', 'local'] },
  },
};

/**
 * A port number from an inventory: an integer from 1 to 65535, or its digits as a string
 * (`ansible_port: "2222"`, as Ansible users write it). Undefined if it is none.
 */
export function portNumber(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*[0-9]+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

/** What an inventory error says of a port that is none (one wording for `port` and `ansible_port`). */
function portProblem(host: string, key: string, v: unknown): string {
  const templated = typeof v === 'string' && v.includes('{{') ? '; connection variables are not templated' : '';
  return `inventory host "${host}": "${key}" must be a port number, an integer from 1 to 65535${templated}, got ${JSON.stringify(v) ?? String(v)}`;
}

/** Ansible writes these as strings as often as not: `ansible_port: "2222"`, `ansible_become: yes`. */
function ansibleValue(key: string, v: unknown): unknown {
  if (key === 'ansible_port') return portNumber(v);
  if (key === 'ansible_become') return typeof v === 'string' ? ['yes', 'true', '1', 'on'].includes(v.toLowerCase()) : Boolean(v);
  if (key === 'ansible_connection') return v === 'local' ? 'local' : 'ssh'; // ssh, paramiko, smart: our ssh
  return String(v);
}

export class Inventory {
  hosts = new Map<string, Host>();
  groups = new Map<string, Group>();

  constructor(public file: string) {}

  static load(file: string): Inventory {
    const inv = new Inventory(file);
    const data = loadYaml(file) as Record<string, any>;
    // Empty, a scalar (a binary file reads as one), a list: the file is named, not just "inventory".
    if (!data || typeof data !== 'object' || Array.isArray(data)) throw new ProvisionError(`an inventory is a mapping (all: hosts:, children:, vars:), this file holds ${data == null ? 'nothing' : Array.isArray(data) ? 'a list' : 'a single value'}`, { file });
    validate(inventorySchema, data, 'inventory');
    const hostEntries = new Map<string, Record<string, unknown>>();
    const walk = (name: string, g: Record<string, any> | null, parent?: string) => {
      const group = inv.groups.get(name) ?? { name, hosts: new Set<string>(), children: [], parents: [], vars: {} };
      inv.groups.set(name, group);
      if (parent && !group.parents.includes(parent)) group.parents.push(parent);
      Object.assign(group.vars, g?.vars ?? {});
      if (g?.vars) inv.#sources(inv.#groupSources, name).push(g.vars);
      for (const [h, entry] of Object.entries(g?.hosts ?? {})) {
        group.hosts.add(h);
        if (entry && Object.keys(entry as object).length) {
          validate(hostSchema, entry, `inventory host "${h}"`);
          hostEntries.set(h, { ...(hostEntries.get(h) ?? {}), ...(entry as object) });
          inv.#sources(inv.#hostSources, h).push(entry as object);
        } else if (!hostEntries.has(h)) hostEntries.set(h, {});
      }
      for (const [child, cg] of Object.entries(g?.children ?? {})) {
        if (!group.children.includes(child)) group.children.push(child);
        walk(child, cg as Record<string, any>, name);
      }
    };
    walk('all', data.all);
    inv.loadVarDirs(dirname(file));
    for (const [name, entry] of hostEntries) {
      const groups = inv.groupChain(name);
      const own = { ...entry, ...inv.hostVarsFile(name) };
      // Ansible's connection variables (ansible_host, ansible_port, …) work too, from the host or
      // its groups; our own keys on the host win.
      const inherited: Record<string, unknown> = Object.assign({}, ...groups.map((g) => inv.groups.get(g)?.vars ?? {}), own);
      // The port is checked here, before anything connects: our own (a host_vars/ file is not
      // checked by the schema), else ansible_port from wherever it was set (the host, a group,
      // group_vars/, host_vars/).
      const portKey = own.port !== undefined ? 'port' : inherited.ansible_port !== undefined ? 'ansible_port' : undefined;
      if (portKey && portNumber(inherited[portKey]) === undefined) throw new ProvisionError(portProblem(name, portKey, inherited[portKey]), inv.#placeOfVar(name, groups, portKey), { key: portKey });
      const hv: Record<string, unknown> = { ...own };
      if (own.port !== undefined) hv.port = portNumber(own.port);
      for (const [ours, theirs] of ANSIBLE_CONNECTION_VARS) if (hv[ours] === undefined && inherited[theirs] !== undefined) hv[ours] = ansibleValue(theirs, inherited[theirs]);
      const address = (hv.address as string) ?? name;
      const local = hv.connection === 'local' || (hv.connection === undefined && (name === 'localhost' || address === '127.0.0.1') && !hv.key);
      const vars: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(hv)) if (!(CONNECTION_KEYS as readonly string[]).includes(k)) vars[k] = v;
      inv.hosts.set(name, {
        name,
        address,
        port: (hv.port as number) ?? 22,
        user: (hv.user as string) ?? 'root',
        key: hv.key as string | undefined,
        knownHosts: hv.known_hosts as string | undefined,
        become: (hv.become as boolean) ?? false,
        connection: local ? 'local' : 'ssh',
        vars,
        groups,
      });
    }
    return inv;
  }

  #hostVarFiles = new Map<string, Record<string, unknown>>();
  /** The mappings a group's vars and a host's entry were merged from, in order (where a key was written). */
  #groupSources = new Map<string, object[]>();
  #hostSources = new Map<string, object[]>();

  #sources(m: Map<string, object[]>, name: string): object[] {
    let l = m.get(name);
    if (!l) m.set(name, (l = []));
    return l;
  }

  /** Where the value a host has for a variable was written: the last mapping that sets it wins, as in the merge. */
  #placeOfVar(host: string, groups: string[], key: string): Place {
    const layers = [...groups.flatMap((g) => this.#groupSources.get(g) ?? []), ...(this.#hostSources.get(host) ?? [])];
    const src = layers.reverse().find((o) => Object.hasOwn(o, key));
    return (src && placeOf(src, key)) ?? { file: this.file };
  }

  private loadVarDirs(dir: string) {
    for (const [sub, target] of [['group_vars', 'group'], ['host_vars', 'host']] as const) {
      const d = join(dir, sub);
      if (!existsSync(d)) continue;
      for (const f of readdirSync(d).sort()) {
        const m = /^(.+)\.ya?ml$/.exec(f);
        if (!m) continue;
        const vars = (loadYaml(join(d, f)) ?? {}) as Record<string, unknown>;
        if (typeof vars !== 'object' || Array.isArray(vars)) throw new ProvisionError('must be a mapping of variables', { file: join(d, f) });
        if (target === 'group') {
          const g = this.groups.get(m[1]);
          if (!g) throw new ProvisionError(`group_vars for unknown group "${m[1]}"`, { file: join(d, f) });
          g.vars = { ...g.vars, ...vars };
          this.#sources(this.#groupSources, m[1]).push(vars);
        } else {
          this.#hostVarFiles.set(m[1], vars);
          this.#sources(this.#hostSources, m[1]).push(vars);
        }
      }
    }
    for (const h of this.#hostVarFiles.keys()) {
      if (![...this.groups.values()].some((g) => g.hosts.has(h))) throw new ProvisionError(`host_vars for unknown host "${h}"`, { file: join(dir, 'host_vars', h) });
    }
  }

  private hostVarsFile(name: string) {
    return this.#hostVarFiles.get(name) ?? {};
  }

  /** Groups containing the host, parents before children (so children's vars win). */
  private groupChain(host: string): string[] {
    const depth = (g: string, seen = new Set<string>()): number => {
      if (seen.has(g)) return 0;
      seen.add(g);
      const grp = this.groups.get(g)!;
      return grp.parents.length ? 1 + Math.max(...grp.parents.map((p) => depth(p, seen))) : 0;
    };
    const member = [...this.groups.values()].filter((g) => this.groupHosts(g.name).has(host)).map((g) => g.name);
    return member.sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));
  }

  groupHosts(name: string, seen = new Set<string>()): Set<string> {
    const g = this.groups.get(name);
    if (!g || seen.has(name)) return new Set();
    seen.add(name);
    const out = new Set(g.hosts);
    for (const c of g.children) for (const h of this.groupHosts(c, seen)) out.add(h);
    return out;
  }

  /** Ansible host patterns: `all`, names, groups, globs, `a:b`, `a:&b`, `a:!b`, commas. */
  select(pattern: string, where = 'host pattern'): Host[] {
    const order = [...this.hosts.keys()];
    let result = new Set<string>();
    const terms = pattern.split(/[:,]/).map((t) => t.trim()).filter(Boolean);
    if (!terms.length) throw new ProvisionError(`${where} is empty`);
    for (const term of terms) {
      const op = term[0] === '&' ? '&' : term[0] === '!' ? '!' : '';
      const name = op ? term.slice(1) : term;
      const matched = this.matchTerm(name);
      if (matched === null) throw new ProvisionError(`${where} "${pattern}": no host or group named "${name}" in ${this.file}`);
      if (op === '&') result = new Set([...result].filter((h) => matched.has(h)));
      else if (op === '!') for (const h of matched) result.delete(h);
      else for (const h of matched) result.add(h);
    }
    return order.filter((h) => result.has(h)).map((h) => this.hosts.get(h)!);
  }

  private matchTerm(name: string): Set<string> | null {
    if (name === 'all' || name === '*') return new Set(this.hosts.keys());
    if (this.groups.has(name)) return this.groupHosts(name);
    if (this.hosts.has(name)) return new Set([name]);
    if (/[*?[]/.test(name)) {
      const re = new RegExp('^' + name.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
      const hits = [...this.hosts.keys(), ...this.groups.keys()].filter((n) => re.test(n));
      const out = new Set<string>();
      for (const n of hits) for (const h of this.groups.has(n) ? this.groupHosts(n) : [n]) out.add(h);
      return out;
    }
    return null;
  }

  groupVars(name: string): Record<string, unknown> {
    return this.groups.get(name)?.vars ?? {};
  }

  /** A host's inventory variables as a play sees them: groups (outermost first), then the host. */
  varsOf(host: Host): Record<string, unknown> {
    return Object.assign({}, ...host.groups.map((g) => this.groupVars(g)), host.vars);
  }

  placeOfHost(name: string) {
    return placeOf(this.hosts.get(name));
  }

  /** Where the value a host has for a variable was written (its groups, its entry, group_vars/, host_vars/). */
  placeOfVar(host: string, key: string): Place {
    return this.#placeOfVar(host, this.hosts.get(host)?.groups ?? [], key);
  }
}
