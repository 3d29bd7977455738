// Jinja2-compatible templating (nunjucks), rendered on the controller. A string that is exactly
// one expression ("{{ ports }}") keeps its native type, as in Ansible.
import nunjucks from 'nunjucks';
import YAML from 'yaml';
import { createHash, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { ProvisionError, type Place } from './errors.ts';

const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true, trimBlocks: true, lstripBlocks: false });

const captured: unknown[] = [];
env.addFilter('__capture', (v: unknown) => {
  captured.push(v);
  return '';
});
env.addFilter('to_json', (v: unknown) => JSON.stringify(v));
env.addFilter('to_nice_json', (v: unknown, indent = 2) => JSON.stringify(v, null, indent));
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
env.addFilter('map_attr', (v: Record<string, unknown>[], attr: string) => (v ?? []).map((x) => x?.[attr]));
env.addFilter('mandatory', (v: unknown) => {
  if (v === undefined || v === null) throw new Error('mandatory variable is not defined');
  return v;
});
(env as any).addTest('truthy', (v: unknown) => Boolean(v));

// ---- lookups (controller side, as in Ansible) ----
// A looked-up secret is a plain string inside templates; the sink (the run's Redactor) learns it
// before anything is printed, so diffs, plans and JSON events show "(sensitive)".
let secretSink: (value: string) => void = () => {};
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
    return env.renderString(text, ctx);
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
