// Playbooks and roles, read the way an Ansible user writes them, validated (keywords and every
// module's arguments) before any host is touched.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import Ajv from 'ajv';
import { ProvisionError, type Place } from './errors.ts';
import { loadYaml, placeOf, placeOfPath } from './source.ts';
import { schemaError, validate } from './schema.ts';
import { modules, resolveModule } from './modules/index.ts';
import { isTemplated } from './template.ts';

export interface Role {
  name: string;
  dir: string;
  defaults: Record<string, unknown>;
}

/** What every kind of task has: keywords, tags, variables, its role. */
interface TaskCommon {
  id: string;
  name: string;
  place: Place;
  when?: unknown;
  loop?: unknown;
  loop_var: string;
  register?: string;
  notify: string[];
  listen: string[];
  tags: string[];
  become?: boolean;
  ignore_errors: boolean;
  changed_when?: unknown;
  failed_when?: unknown;
  no_log: boolean;
  retries?: number;
  until?: unknown;
  delay: number;
  run_once: boolean;
  delegate_to?: string;
  check_mode?: boolean;
  vars: Record<string, unknown>;
  role?: Role;
}

/** A task runs a module, or groups tasks (block/rescue/always), or is `meta: flush_handlers`. */
export interface ModuleTask extends TaskCommon { kind: 'module'; module: string; args: Record<string, unknown> }
export interface BlockTask extends TaskCommon { kind: 'block'; block: Task[]; rescue: Task[]; always: Task[] }
export interface MetaTask extends TaskCommon { kind: 'meta'; meta: 'flush_handlers' }
export type Task = ModuleTask | BlockTask | MetaTask;

export interface Play {
  name: string;
  hosts: string;
  place: Place;
  vars: Record<string, unknown>;
  roles: Role[];
  tasks: Task[];
  handlers: ModuleTask[];
  serial?: number | string;
  any_errors_fatal: boolean;
  max_fail_percentage?: number;
  become: boolean;
  gather_facts: boolean;
  dir: string;
}

const TASK_KEYWORDS = [
  'name', 'when', 'loop', 'loop_control', 'register', 'notify', 'listen', 'tags', 'become', 'ignore_errors',
  'changed_when', 'failed_when', 'no_log', 'retries', 'until', 'delay', 'run_once', 'delegate_to', 'vars',
  'block', 'rescue', 'always', 'check_mode', 'meta', 'args',
];

/** Ansible keywords we do not have, each with what to write instead (an error, never ignored). */
const WITH_LOOP = 'use `loop:` (with_items flattens one level: `loop: "{{ x | flatten(levels=1) }}"`; with_dict: `loop: "{{ x | dict2items }}"`; with_list: `loop: "{{ x }}"`)';
const UNSUPPORTED_TASK_KEYWORDS: Record<string, string> = {
  async: 'tasks run to completion here; run long work as a systemd unit (`systemd: { name, state: started }`) and `wait_for` its port or file',
  poll: 'tasks run to completion here (no async); see `async`',
  environment: 'set the variables in the command (`command: "env NAME=value cmd"`) or in a unit\'s `Environment=`',
  become_user: '`become` means root (sudo -n) here; run as another user with `command: "runuser -u USER -- cmd"` or a unit\'s `User=`',
  become_method: '`become` is sudo -n here',
  local_action: 'use `delegate_to: localhost` with the module as usual',
  delegate_facts: 'facts are gathered per host once per play; register on the delegated task instead',
  throttle: 'use the play\'s `serial:` or `--forks N`',
  timeout: 'use the module\'s own timeout (wait_for `timeout:`) or `command: "timeout 30 cmd"`',
  diff: '`--diff` on the command line (plans always show diffs)',
  debugger: 'not supported; `-v` prints task positions, `--json` every event',
  module_defaults: 'repeat the arguments on each task (or put them in a variable)',
  collections: 'write the module\'s fully qualified name (ansible.builtin.*) or its short name',
  remote_user: 'set `ansible_user` (or `user`) in the inventory',
  connection: 'set `ansible_connection` (or `connection`) in the inventory',
  any_errors_fatal: 'set it on the play',
};
for (const k of ['with_items', 'with_list', 'with_dict', 'with_fileglob', 'with_together', 'with_nested', 'with_sequence', 'with_subelements', 'with_indexed_items', 'with_random_choice', 'with_first_found', 'with_lines', 'with_inventory_hostnames', 'with_flattened']) UNSUPPORTED_TASK_KEYWORDS[k] = WITH_LOOP;
const UNSUPPORTED_PLAY_KEYWORDS: Record<string, string> = {
  remote_user: 'set `ansible_user` (or `user`) in the inventory',
  connection: 'set `ansible_connection` (or `connection`) in the inventory',
  strategy: 'plays run with Ansible\'s linear strategy (each task on every host, in parallel up to --forks)',
  vars_prompt: 'pass the value with `-e name=value` (or `-e @file.yml`; mark secrets with !secret)',
  environment: 'set the variables in the commands or in the units',
  become_user: '`become` means root (sudo -n) here',
  become_method: '`become` is sudo -n here',
  order: 'hosts run in inventory order',
  force_handlers: 'notified handlers are kept on the host until they ran: the next apply runs them (docs/engine.md, Handlers)',
  collections: 'write modules by their fully qualified name (ansible.builtin.*) or their short name',
  module_defaults: 'repeat the arguments on each task (or put them in a variable)',
  gather_subset: 'the facts are gathered once, all of them (docs/engine.md)',
  ignore_unreachable: 'an unreachable host is reported and the others go on; not configurable',
};
/** Task-level inclusions (static here, as imports; their `when`, `tags` and `vars` apply to what they bring in). */
const INCLUDE_TASKS = ['import_tasks', 'include_tasks', 'ansible.builtin.import_tasks', 'ansible.builtin.include_tasks'];
const INCLUDE_ROLE = ['import_role', 'include_role', 'ansible.builtin.import_role', 'ansible.builtin.include_role'];

const taskSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    register: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    notify: { type: ['string', 'array'], items: { type: 'string' } },
    listen: { type: ['string', 'array'], items: { type: 'string' } },
    tags: { type: ['string', 'array'], items: { type: 'string' } },
    become: { type: 'boolean' },
    ignore_errors: { type: 'boolean' },
    no_log: { type: 'boolean' },
    retries: { type: 'integer', minimum: 0 },
    delay: { type: 'number', minimum: 0 },
    run_once: { type: 'boolean' },
    delegate_to: { type: 'string' },
    vars: { type: 'object' },
    loop: { type: ['array', 'string'] },
    loop_control: { type: 'object', additionalProperties: false, properties: { loop_var: { type: 'string' } } },
    block: { type: 'array' },
    rescue: { type: 'array' },
    always: { type: 'array' },
    check_mode: { type: 'boolean' },
    meta: { enum: ['flush_handlers'] },
    import_tasks: { type: 'string' },
  },
};

const playSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['hosts'],
  properties: {
    name: { type: 'string' },
    hosts: { type: 'string', minLength: 1 },
    vars: { type: 'object' },
    vars_files: { type: 'array', items: { type: 'string', minLength: 1 } },
    roles: { type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'object', required: ['role'], additionalProperties: false, properties: { role: { type: 'string' }, vars: { type: 'object' }, tags: { type: ['string', 'array'] } } }] } },
    tasks: { type: 'array' },
    pre_tasks: { type: 'array' },
    post_tasks: { type: 'array' },
    handlers: { type: 'array' },
    serial: { type: ['integer', 'string'] },
    any_errors_fatal: { type: 'boolean' },
    max_fail_percentage: { type: 'number', minimum: 0, maximum: 100 },
    become: { type: 'boolean' },
    gather_facts: { type: 'boolean' },
    tags: { type: ['string', 'array'] },
  },
};

/**
 * What is wrong with a play's `serial:` (undefined: nothing): a positive integer (or its digits as a
 * string), or a percentage of the play's hosts ("30%", more than 0, at most 100). One rule for the
 * loader, which refuses a bad one with its file:line before any play runs, and the runner.
 */
export function serialProblem(serial: unknown): string | undefined {
  if (serial === undefined) return undefined;
  if (typeof serial === 'number' && Number.isInteger(serial) && serial >= 1) return undefined;
  if (typeof serial === 'string') {
    const s = serial.trim();
    if (/^[1-9][0-9]*$/.test(s)) return undefined;
    const pct = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(s);
    if (pct && Number(pct[1]) > 0 && Number(pct[1]) <= 100) return undefined;
  }
  return `serial must be a positive integer or a percentage, got ${JSON.stringify(serial)}`;
}

/** The hosts of one batch: `serial:` of `hosts` hosts (a percentage rounds down, to 1 at least). */
export function serialBatchSize(serial: number | string, hosts: number): number {
  const problem = serialProblem(serial);
  if (problem) throw new ProvisionError(problem, undefined, { key: 'serial' });
  const s = String(serial).trim();
  return s.endsWith('%') ? Math.max(1, Math.floor((hosts * parseFloat(s)) / 100)) : Number(s);
}

const list = (v: unknown): string[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

const lenient = new Ajv.default({ allErrors: true, strict: false, allowUnionTypes: true });
const lenientCache = new WeakMap<object, ReturnType<typeof lenient.compile>>();

/** Module args may hold templates whose type is only known after rendering: checked again then. */
export function validateArgsStatic(module: string, args: unknown, place: Place, taskName: string): void {
  const m = modules[module];
  let fn = lenientCache.get(m.schema);
  if (!fn) lenientCache.set(m.schema, (fn = lenient.compile(m.schema)));
  if (fn(args)) return;
  const valueAt = (path: string) => path.split('/').slice(1).reduce((o: any, k) => (o == null ? o : o[k]), args);
  const real = fn.errors!.filter((e) => {
    const v = valueAt(e.instancePath);
    if (typeof v === 'string' && isTemplated(v)) return false;
    // oneOf/anyOf/if failures caused only by a templated member are decided after rendering.
    if (['oneOf', 'anyOf', 'if', 'then'].includes(e.keyword)) return false;
    return true;
  });
  if (!real.length) return;
  const err = schemaError(real[0], args, `module ${module} arguments`, { task: taskName });
  err.place ??= place;
  throw err;
}

/** Handlers run a module each (no block, no meta), as in Ansible. */
function moduleTasksOnly(tasks: Task[]): ModuleTask[] {
  for (const t of tasks) if (t.kind !== 'module') throw new ProvisionError(`handler "${t.name}" must run a module (a ${t.kind} cannot be a handler)`, t.place, { task: t.name });
  return tasks as ModuleTask[];
}

export class PlaybookLoader {
  roleCache = new Map<string, Role>();
  /** The play being loaded: where import_role/include_role add the role's defaults and handlers. */
  private current?: { roles: Role[]; handlers: ModuleTask[] };

  constructor(private playbookDir: string) {}

  /** The keywords of a task that only wraps others (an inclusion with a `when`). */
  private common(t: Record<string, any>, place: Place, name: string, inherit: { tags: string[]; role?: Role; vars?: Record<string, unknown>; become?: boolean }): TaskCommon {
    return {
      id: `${place.file}:${place.line}:${place.col}`, name: t.name ?? name, place, when: t.when, loop_var: 'item', notify: [], listen: [],
      tags: inherit.tags, become: t.become ?? inherit.become, ignore_errors: false, no_log: false, delay: 1, run_once: false,
      vars: inherit.vars ?? {}, role: inherit.role,
    };
  }

  static load(file: string): Play[] {
    const data = loadYaml(file);
    if (!Array.isArray(data)) throw new ProvisionError('a playbook is a list of plays', placeOf(data) ?? { file });
    const loader = new PlaybookLoader(dirname(resolve(file)));
    return data.map((p) => loader.play(p as Record<string, any>, file));
  }

  private play(p: Record<string, any>, file: string): Play {
    for (const k of Object.keys(p ?? {})) {
      if (UNSUPPORTED_PLAY_KEYWORDS[k]) throw new ProvisionError(`play keyword "${k}" is not supported: ${UNSUPPORTED_PLAY_KEYWORDS[k]}`, placeOf(p, k) ?? { file }, { key: k });
    }
    validate(playSchema, p, 'play');
    const place = placeOf(p) ?? { file };
    const serial = serialProblem(p.serial);
    if (serial) throw new ProvisionError(serial, placeOf(p, 'serial') ?? place, { key: 'serial' });
    const playTags = list(p.tags);
    const roles: Role[] = [];
    const tasks: Task[] = [];
    const handlers: ModuleTask[] = [];
    this.current = { roles, handlers };
    tasks.push(...this.tasks(p.pre_tasks ?? [], dirname(file), { tags: playTags }));
    for (const r of p.roles ?? []) {
      const ref = typeof r === 'string' ? { role: r } : r;
      const role = this.role(ref.role, placeOfPath(p, ['roles']) ?? place);
      roles.push(role);
      const extraVars = ref.vars ?? {};
      const tags = [...playTags, ...list(ref.tags)];
      tasks.push(...this.roleTaskList(role, tags, extraVars));
      handlers.push(...moduleTasksOnly(this.roleHandlerList(role, extraVars)));
    }
    tasks.push(...this.tasks(p.tasks ?? [], dirname(file), { tags: playTags }));
    tasks.push(...this.tasks(p.post_tasks ?? [], dirname(file), { tags: playTags }));
    handlers.push(...moduleTasksOnly(this.tasks(p.handlers ?? [], dirname(file), { tags: [] })));
    return {
      name: p.name ?? p.hosts,
      hosts: p.hosts,
      place,
      // vars_files (relative to the playbook), then the play's own vars on top, as in Ansible.
      vars: { ...this.varsFiles(p.vars_files ?? [], dirname(file), placeOfPath(p, ['vars_files']) ?? place), ...(p.vars ?? {}) },
      roles,
      tasks,
      handlers,
      serial: p.serial,
      any_errors_fatal: p.any_errors_fatal ?? false,
      max_fail_percentage: p.max_fail_percentage,
      become: p.become ?? false,
      gather_facts: p.gather_facts ?? true,
      dir: this.playbookDir,
    };
  }

  private varsFiles(files: string[], dir: string, place: Place): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of files) {
      const path = isAbsolute(f) ? f : join(dir, f);
      if (!existsSync(path)) throw new ProvisionError(`vars_files: ${f} not found (${path})`, place);
      const v = loadYaml(path);
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ProvisionError('vars file must be a mapping of variables', { file: path });
      Object.assign(out, v);
    }
    return out;
  }

  private role(name: string, place: Place): Role {
    const cached = this.roleCache.get(name);
    if (cached) return cached;
    const candidates = [join(this.playbookDir, 'roles', name), join(this.playbookDir, '..', 'roles', name)];
    const dir = candidates.find((d) => existsSync(d));
    if (!dir) throw new ProvisionError(`role "${name}" not found (looked in ${candidates.join(', ')})`, place);
    const defaultsFile = ['main.yml', 'main.yaml'].map((f) => join(dir, 'defaults', f)).find(existsSync);
    const defaults = defaultsFile ? ((loadYaml(defaultsFile) ?? {}) as Record<string, unknown>) : {};
    const role = { name, dir: resolve(dir), defaults };
    this.roleCache.set(name, role);
    return role;
  }

  private roleFile(role: Role, sub: string, base = 'main'): string | undefined {
    return [`${base}.yml`, `${base}.yaml`].map((f) => join(role.dir, sub, f)).find(existsSync);
  }

  private roleTaskList(role: Role, tags: string[], vars: Record<string, unknown>, tasksFrom = 'main'): Task[] {
    const f = this.roleFile(role, 'tasks', tasksFrom);
    if (!f) return [];
    const raw = loadYaml(f);
    if (!Array.isArray(raw)) throw new ProvisionError('a tasks file is a list of tasks', { file: f });
    return this.tasks(raw, dirname(f), { tags, role, vars });
  }

  /** A role's handlers, with the role's parameters (`roles: [{role: web, vars: {…}}]`), as its tasks have. */
  private roleHandlerList(role: Role, vars: Record<string, unknown> = {}): Task[] {
    const f = this.roleFile(role, 'handlers');
    if (!f) return [];
    const raw = loadYaml(f);
    if (!Array.isArray(raw)) throw new ProvisionError('a handlers file is a list of tasks', { file: f });
    return this.tasks(raw, dirname(f), { tags: [], role, vars });
  }

  tasks(raw: unknown[], dir: string, inherit: { tags: string[]; role?: Role; vars?: Record<string, unknown>; become?: boolean }): Task[] {
    const out: Task[] = [];
    for (const t of raw) {
      if (!t || typeof t !== 'object' || Array.isArray(t)) throw new ProvisionError('a task must be a mapping', placeOf(raw));
      const task = t as Record<string, any>;
      const includeKey = INCLUDE_TASKS.find((k) => task[k] !== undefined);
      const roleKey = INCLUDE_ROLE.find((k) => task[k] !== undefined);
      if (includeKey || roleKey) {
        if (task.loop !== undefined) throw new ProvisionError(`${includeKey ?? roleKey} with a loop is not supported (inclusions are static here): put the loop on the tasks inside`, placeOf(task, 'loop') ?? placeOf(task));
        const sub = { ...inherit, tags: [...inherit.tags, ...list(task.tags)], vars: { ...inherit.vars, ...task.vars } };
        let inner: Task[];
        if (includeKey) {
          const ref = task[includeKey];
          const f = resolve(dir, typeof ref === 'string' ? ref : ref?.file);
          if (!existsSync(f)) throw new ProvisionError(`${includeKey}: ${f} not found`, placeOf(task, includeKey) ?? placeOf(task));
          const raw = loadYaml(f);
          if (!Array.isArray(raw)) throw new ProvisionError('a tasks file is a list of tasks', { file: f });
          inner = this.tasks(raw, dirname(f), sub);
        } else {
          const ref = task[roleKey!] as { name?: string; tasks_from?: string };
          if (!ref?.name) throw new ProvisionError(`${roleKey} needs a name (the role)`, placeOf(task, roleKey!) ?? placeOf(task));
          const role = this.role(ref.name, placeOf(task, roleKey!) ?? placeOf(task) ?? {});
          // The role's defaults and handlers join the play, as with `roles:`.
          this.current?.roles.push(role);
          this.current?.handlers.push(...moduleTasksOnly(this.roleHandlerList(role, sub.vars)));
          inner = this.roleTaskList(role, sub.tags, sub.vars ?? {}, ref.tasks_from);
        }
        // A `when` on the inclusion applies to every task it brings in: a block carries it.
        if (task.when !== undefined) {
          const place = placeOf(task) ?? {};
          out.push({ ...this.common(task, place, `${includeKey ?? roleKey}`, sub), kind: 'block', block: inner, rescue: [], always: [] });
        } else out.push(...inner);
        continue;
      }
      out.push(this.task(task, dir, inherit));
    }
    return out;
  }

  private task(t: Record<string, any>, dir: string, inherit: { tags: string[]; role?: Role; vars?: Record<string, unknown>; become?: boolean }): Task {
    const place = placeOf(t) ?? {};
    for (const k of Object.keys(t)) {
      if (UNSUPPORTED_TASK_KEYWORDS[k]) throw new ProvisionError(`task keyword "${k}" is not supported: ${UNSUPPORTED_TASK_KEYWORDS[k]}`, placeOf(t, k) ?? place, { task: t.name, key: k });
    }
    validate(taskSchema, t, 'task', { task: t.name });
    const moduleKeys = Object.keys(t).filter((k) => !TASK_KEYWORDS.includes(k));
    const name = t.name ?? (moduleKeys[0] ? `${moduleKeys[0]}` : t.block ? 'block' : t.meta ? `meta: ${t.meta}` : 'task');
    for (const k of moduleKeys) {
      const r = resolveModule(k);
      if (r && 'refused' in r) throw new ProvisionError(r.refused, placeOf(t, k), { task: name, key: k });
      if (!r) {
        throw new ProvisionError(`unknown module or keyword "${k}" (modules: ${Object.keys(modules).sort().join(', ')}; also as ansible.builtin.NAME; service and systemd_service mean systemd)`, placeOf(t, k), { task: name, key: k });
      }
    }
    const isBlock = Array.isArray(t.block);
    const expected = isBlock || t.meta ? 0 : 1;
    if (moduleKeys.length !== expected) {
      const why = moduleKeys.length > expected ? `more than one module (${moduleKeys.join(', ')})` : 'no module (and no block or meta)';
      throw new ProvisionError(`a task needs exactly one module, found ${why}`, placeOf(t, moduleKeys[expected]) ?? place, { task: name });
    }
    const tags = [...inherit.tags, ...list(t.tags)];
    const base: TaskCommon = {
      id: `${place.file}:${place.line}:${place.col}`,
      name,
      place,
      when: t.when,
      loop: t.loop,
      loop_var: t.loop_control?.loop_var ?? 'item',
      register: t.register,
      notify: list(t.notify),
      listen: list(t.listen),
      tags,
      become: t.become ?? inherit.become,
      ignore_errors: t.ignore_errors ?? false,
      changed_when: t.changed_when,
      failed_when: t.failed_when,
      no_log: t.no_log ?? false,
      retries: t.retries,
      until: t.until,
      delay: t.delay ?? 1,
      run_once: t.run_once ?? false,
      delegate_to: t.delegate_to,
      check_mode: t.check_mode,
      vars: { ...inherit.vars, ...(t.vars ?? {}) },
      role: inherit.role,
    };
    if (isBlock) {
      const sub = { ...inherit, tags, become: t.become ?? inherit.become };
      return { ...base, kind: 'block', block: this.tasks(t.block, dir, sub), rescue: this.tasks(t.rescue ?? [], dir, sub), always: this.tasks(t.always ?? [], dir, sub) };
    }
    if (t.meta) return { ...base, kind: 'meta', meta: t.meta };
    const key = moduleKeys[0];
    const module = (resolveModule(key) as { name: string }).name;
    let args = t[key];
    // Free-form `command: "systemctl daemon-reload"` as in Ansible (the module says which argument).
    const freeForm = modules[module].freeFormArg;
    if (freeForm && typeof args === 'string') args = { [freeForm]: args };
    if (args === null) args = {};
    if (typeof args !== 'object' || Array.isArray(args)) throw new ProvisionError(`arguments of module ${key} must be a mapping`, placeOf(t, key), { task: name, key });
    // Ansible's `args:` beside the module (`command: foo` + `args: { chdir, creates }`): merged in.
    if (t.args !== undefined) {
      if (!t.args || typeof t.args !== 'object' || Array.isArray(t.args)) throw new ProvisionError('args must be a mapping of the module\'s arguments', placeOf(t, 'args'), { task: name, key: 'args' });
      args = { ...t.args, ...args };
    }
    validateArgsStatic(module, args, placeOf(t, key) ?? place, name);
    return { ...base, kind: 'module', module, args };
  }
}
