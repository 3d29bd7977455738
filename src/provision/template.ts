// Jinja2-compatible templating (nunjucks), rendered on the controller. A string that is exactly
// one expression ("{{ ports }}") keeps its native type, as in Ansible.
import nunjucks from 'nunjucks';
import YAML from 'yaml';
import { createHash, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { ProvisionError, type Place } from './errors.ts';

const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true, trimBlocks: true, lstripBlocks: false });

// ---- strict undefined (Ansible's default) ----
// A variable or attribute that does not exist is an error naming it — in `when:` as in a
// template — never a silent false or empty string. Only where Ansible lets an undefined value
// through does it pass: the operand of `is defined` / `is undefined` and of `default` / `d`.
// Done at compile time: nunjucks' compiler emits each lookup; the strict ones are wrapped.
type AstNode = { typename: string; value?: unknown; target?: AstNode; val?: AstNode; __lenient?: boolean };
const LENIENT_TESTS = new Set(['defined', 'undefined']);
const LENIENT_FILTERS = new Set(['default', 'd']);

class UndefinedVariable extends Error {
  constructor(public variable: string, public templateLine: number) {
    super(`"${variable}" is undefined`);
  }
}

/** `node.has_turn`, `hostvars[h].wg_ip`: the expression as the user wrote it, for the message. */
function exprName(n: AstNode | undefined): string {
  if (!n) return '?';
  if (n.typename === 'Symbol') return String(n.value);
  if (n.typename === 'Literal') return JSON.stringify(n.value);
  if (n.typename === 'LookupVal') {
    const key = n.val!;
    return key.typename === 'Literal' && typeof key.value === 'string' && /^[A-Za-z_]\w*$/.test(key.value) ? `${exprName(n.target)}.${key.value}` : `${exprName(n.target)}[${exprName(key)}]`;
  }
  return '(expression)';
}

function markLenient(n: AstNode | undefined) {
  while (n && n.typename === 'LookupVal') {
    n.__lenient = true;
    n = n.target;
  }
  if (n && n.typename === 'Symbol') n.__lenient = true;
}

const rt = nunjucks.runtime as unknown as Record<string, unknown>;
/** nunjucks re-wraps what a template throws (losing the class): the last one thrown, for fail(). */
let lastUndefined: UndefinedVariable | undefined;
rt.__strict = (v: unknown, name: string, line: number) => {
  if (v === undefined) throw (lastUndefined = new UndefinedVariable(name, line));
  return v;
};
const C = (nunjucks as unknown as { compiler: { Compiler: { prototype: Record<string, any> } } }).compiler.Compiler.prototype;
const { compileSymbol, compileLookupVal, compileIs, compileFilter } = C;
C.compileIs = function (this: any, node: { left: AstNode; right: { name?: { value: string }; value?: string } }, frame: unknown) {
  if (LENIENT_TESTS.has(node.right.name ? node.right.name.value : String(node.right.value))) markLenient(node.left);
  return compileIs.call(this, node, frame);
};
C.compileFilter = function (this: any, node: { name: { value: string }; args: { children: AstNode[] } }, frame: unknown) {
  if (LENIENT_FILTERS.has(node.name.value)) markLenient(node.args.children[0]);
  return compileFilter.call(this, node, frame);
};
for (const [method, original] of [['compileSymbol', compileSymbol], ['compileLookupVal', compileLookupVal]] as const) {
  C[method] = function (this: any, node: AstNode & { lineno: number }, frame: { lookup(name: string): unknown }) {
    // Names bound by the template itself (loop variables, {% set %}) are always defined.
    if (node.__lenient || (node.typename === 'Symbol' && frame.lookup(String(node.value)))) return original.call(this, node, frame);
    this._emit('runtime.__strict(');
    original.call(this, node, frame);
    this._emit(`, ${JSON.stringify(exprName(node))}, ${node.lineno + 1})`);
  };
}

/**
 * JSON as Ansible's to_json / to_nice_json write it (Python's json.dumps): ", " and ": " between
 * items, non-ASCII escaped; to_nice_json indents by 4 and sorts the keys. A role moved from
 * Ansible then renders byte for byte the same files (no spurious diffs, no restarts).
 */
export function pythonJson(v: unknown, indent?: number, depth = 0): string {
  const ascii = (str: string) => JSON.stringify(str).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return ascii(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : v > 0 ? 'Infinity' : v < 0 ? '-Infinity' : 'NaN';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  const pad = indent === undefined ? '' : '\n' + ' '.repeat(indent * (depth + 1));
  const end = indent === undefined ? '' : '\n' + ' '.repeat(indent * depth);
  const sep = indent === undefined ? ', ' : ',';
  if (Array.isArray(v)) return v.length ? `[${pad}${v.map((x) => pythonJson(x, indent, depth + 1)).join(sep + pad)}${end}]` : '[]';
  if (typeof v === 'object') {
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return pythonJson((v as { toJSON(): unknown }).toJSON(), indent, depth);
    let keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined);
    if (indent !== undefined) keys = keys.sort();
    return keys.length ? `{${pad}${keys.map((k) => `${ascii(k)}: ${pythonJson((v as Record<string, unknown>)[k], indent, depth + 1)}`).join(sep + pad)}${end}}` : '{}';
  }
  return JSON.stringify(String(v));
}

const captured: unknown[] = [];
env.addFilter('__capture', (v: unknown) => {
  captured.push(v);
  return '';
});
env.addFilter('to_json', (v: unknown) => pythonJson(v));
env.addFilter('to_nice_json', (v: unknown, indent = 4) => pythonJson(v, indent));
env.addFilter('to_yaml', (v: unknown) => YAML.stringify(v).trimEnd());
env.addFilter('from_json', (v: string) => JSON.parse(v));
env.addFilter('b64encode', (v: string) => Buffer.from(String(v)).toString('base64'));
env.addFilter('b64decode', (v: string) => Buffer.from(String(v), 'base64').toString('utf8'));
env.addFilter('bool', (v: unknown) => (typeof v === 'string' ? ['yes', 'true', '1', 'on'].includes(v.toLowerCase()) : Boolean(v)));
// Ansible's backreferences are \\1 (Python); JavaScript's are $1: both work.
env.addFilter('regex_replace', (v: string, pattern: string, repl = '') => String(v).replace(new RegExp(pattern, 'g'), String(repl).replace(/\\(\d)/g, '$$$1')));
env.addFilter('hash', (v: string, algo = 'sha1') => createHash(algo).update(String(v)).digest('hex'));
env.addFilter('dict2items', (v: Record<string, unknown>) => Object.entries(v ?? {}).map(([key, value]) => ({ key, value })));
env.addFilter('items2dict', (v: { key: string; value: unknown }[]) => Object.fromEntries((v ?? []).map((i) => [i.key, i.value])));
// Ansible's map: map('extract', container, key?), map(attribute='x'), or map('filter', args…).
env.addFilter('map', function (this: unknown, seq: unknown[], ...args: unknown[]) {
  const kw = args.length && (args[args.length - 1] as { __keywords?: boolean })?.__keywords ? (args.pop() as Record<string, unknown>) : {};
  const items = [...((seq ?? []) as Iterable<unknown>)];
  if (typeof kw.attribute === 'string') return items.map((x) => (x as Record<string, unknown>)?.[kw.attribute as string] ?? kw.default);
  const [name, ...rest] = args;
  if (name === 'extract') {
    const [container, key] = rest as [Record<string, unknown>, string | undefined];
    return items.map((x) => {
      const v = (container as Record<string, unknown>)?.[x as string];
      return key === undefined ? v : (v as Record<string, unknown>)?.[key];
    });
  }
  const f = env.getFilter(String(name));
  return items.map((x) => f.call(this, x, ...rest));
});
// Ansible's flatten(levels=N): lists inside lists, all levels unless told.
env.addFilter('flatten', function (seq: unknown[], ...args: unknown[]) {
  const kw = args.length && (args[args.length - 1] as { __keywords?: boolean })?.__keywords ? (args.pop() as Record<string, unknown>) : {};
  const levels = Number(kw.levels ?? args[0] ?? Infinity);
  return (seq ?? []).flat(levels);
});
env.addFilter('map_attr', (v: Record<string, unknown>[], attr: string) => (v ?? []).map((x) => x?.[attr]));
env.addFilter('mandatory', (v: unknown) => {
  if (v === undefined || v === null) throw new Error('mandatory variable is not defined');
  return v;
});
(env as any).addTest('truthy', (v: unknown) => Boolean(v));
// Ansible's tests on registered results (`when: result is changed`) and on strings.
const res = (v: unknown) => (v ?? {}) as { changed?: boolean; failed?: boolean; skipped?: boolean; results?: { changed?: boolean; failed?: boolean }[] };
(env as any).addTest('changed', (v: unknown) => Boolean(res(v).changed));
(env as any).addTest('failed', (v: unknown) => Boolean(res(v).failed));
for (const name of ['succeeded', 'success']) (env as any).addTest(name, (v: unknown) => !res(v).failed);
(env as any).addTest('skipped', (v: unknown) => Boolean(res(v).skipped));
(env as any).addTest('match', (v: unknown, re: string) => new RegExp(`^(?:${re})`).test(String(v)));
(env as any).addTest('search', (v: unknown, re: string) => new RegExp(re).test(String(v)));

// ---- lookups (controller side, as in Ansible) ----
// A looked-up secret is a plain string inside templates; the sink (the run's Redactor) learns it
// before anything is printed, so diffs, plans and JSON events show "(sensitive)".
let secretSink: (value: string) => void = () => {};

/** Set while the runner only looks ahead (prefetch): a lookup that would create something refuses. */
let speculating = false;
export function withoutSideEffects<T>(fn: () => T): T {
  speculating = true;
  try {
    return fn();
  } finally {
    speculating = false;
  }
}
export function onLookupSecret(sink: (value: string) => void): void {
  secretSink = sink;
}

const CHARSETS: Record<string, string> = {
  ascii_letters: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
  ascii_lowercase: 'abcdefghijklmnopqrstuvwxyz',
  ascii_uppercase: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  digits: '0123456789',
  hexdigits: '0123456789abcdef',
};

/**
 * ansible.builtin.password: `lookup('password', '/abs/path length=32 chars=ascii_letters,digits')`
 * returns the password stored in that controller file, generating it (0600, directories 0700)
 * the first time. Every run and every host read the same file, so all nodes get the same value.
 */
export function passwordLookup(term: string): string {
  const [path, ...params] = term.trim().split(/\s+/);
  if (!path || !isAbsolute(path)) throw new Error(`lookup('password'): "${path ?? ''}" must be an absolute path (e.g. "{{ inventory_dir }}/credentials/NAME")`);
  const opts: Record<string, string> = {};
  for (const p of params) {
    const m = /^(length|chars)=(.+)$/.exec(p);
    if (!m) throw new Error(`lookup('password'): unknown parameter "${p}" (length=N, chars=ascii_letters,digits,…)`);
    opts[m[1]] = m[2];
  }
  if (existsSync(path)) {
    const value = readFileSync(path, 'utf8').split('\n')[0].replace(/ salt=.*$/, '');
    if (!value) throw new Error(`lookup('password'): ${path} is empty`);
    secretSink(value);
    return value;
  }
  if (speculating) throw new Error(`lookup('password'): ${path} would be created`);
  const length = Number(opts.length ?? 20);
  if (!Number.isInteger(length) || length < 8 || length > 256) throw new Error(`lookup('password'): length=${opts.length} must be an integer from 8 to 256`);
  const alphabet = (opts.chars ?? 'ascii_letters,digits').split(',').map((c) => CHARSETS[c] ?? c).join('');
  let value = '';
  for (let i = 0; i < length; i++) value += alphabet[randomInt(alphabet.length)];
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, value + '\n', { mode: 0o600, flag: 'wx' });
  secretSink(value);
  return value;
}

env.addGlobal('lookup', (kind: string, term: string) => {
  if (kind === 'password' || kind === 'ansible.builtin.password') return passwordLookup(String(term));
  if (kind === 'env' || kind === 'ansible.builtin.env') return process.env[String(term)] ?? '';
  throw new Error(`lookup plugin "${kind}" is not supported (password, env)`);
});

// Compiled templates are cached: a run renders the same few hundred strings for every host.
const compiled = new Map<string, nunjucks.Template>();
function compile(src: string): nunjucks.Template {
  let t = compiled.get(src);
  if (!t) {
    if (compiled.size > 5000) compiled.clear();
    t = new nunjucks.Template(src, env, undefined, true);
    compiled.set(src, t);
  }
  return t;
}
const run = (src: string, ctx: object) => compile(src).render(ctx);

const ONE_EXPR = /^\{\{\s*([^{}]+?)\s*\}\}$/;

function fail(e: unknown, text: string, where?: Place): never {
  const cause = lastUndefined && String((e as Error).message).includes(lastUndefined.message) ? lastUndefined : undefined;
  lastUndefined = undefined;
  if (cause) {
    // A template file's error points at its line; a task's string at the task.
    const place = where?.file && !where.line ? { ...where, line: cause.templateLine } : where;
    const hint = cause.variable.includes('.') || cause.variable.includes('[') ? '' : ` (set it in vars, inventory or -e; or write \`${cause.variable} | default(...)\` or \`${cause.variable} is defined\`)`;
    throw new ProvisionError(`undefined variable: "${cause.variable}" is undefined in ${JSON.stringify(text.length > 120 ? text.slice(0, 117) + '...' : text)}${hint}`, place);
  }
  const msg = (e as Error).message.replace(/^\(unknown path\)\s*/, '').replace(/\s+/g, ' ').trim();
  throw new ProvisionError(`template error in ${JSON.stringify(text.length > 120 ? text.slice(0, 117) + '...' : text)}: ${msg}`, where);
}

export function isTemplated(s: string): boolean {
  return s.includes('{{') || s.includes('{%');
}

/** Renders one string; a lone expression returns its native value. */
export function renderString(text: string, ctx: object, where?: Place): unknown {
  if (!isTemplated(text)) return text;
  try {
    const m = ONE_EXPR.exec(text);
    if (m) {
      captured.length = 0;
      run(`{{ (${m[1]}) | __capture }}`, ctx);
      if (captured[0] === undefined) throw new Error(`"${m[1]}" is undefined`);
      return captured[0];
    }
    return run(text, ctx);
  } catch (e) {
    fail(e, text, where);
  }
}

export function renderDeep(v: unknown, ctx: object, where?: Place): unknown {
  if (typeof v === 'string') return renderString(v, ctx, where);
  if (Array.isArray(v)) return v.map((x) => renderDeep(x, ctx, where));
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = renderDeep(x, ctx, where);
    return out;
  }
  return v;
}

/** A template file's text (template module): always a string. */
export function renderText(text: string, ctx: object, where?: Place): string {
  try {
    // As Ansible: the output ends with as many newlines as the template does (trim_blocks would
    // eat the one after a closing `{% endfor %}` on the last line).
    const out = env.renderString(text, ctx);
    const trailing = (x: string) => x.length - x.replace(/\n+$/, '').length;
    return out + '\n'.repeat(Math.max(0, trailing(text) - trailing(out)));
  } catch (e) {
    fail(e, text.split('\n')[0] + ' …', where);
  }
}

/** `when:`/`until:`/`changed_when:` — bare Jinja2 expressions (no braces), a list means AND. */
export function evalCondition(cond: unknown, ctx: object, where?: Place): boolean {
  if (typeof cond === 'boolean') return cond;
  const list = Array.isArray(cond) ? cond : [cond];
  for (const c of list) {
    if (typeof c === 'boolean') {
      if (!c) return false;
      continue;
    }
    const expr = String(c).replace(/^\{\{\s*|\s*\}\}$/g, '');
    let out: string;
    try {
      out = run(`{% if ${expr} %}1{% else %}0{% endif %}`, ctx);
    } catch (e) {
      fail(e, String(c), where);
    }
    if (out !== '1') return false;
  }
  return true;
}
