// Jinja2-compatible templating (nunjucks), rendered on the controller. A string that is exactly
// one expression ("{{ ports }}") keeps its native type, as in Ansible.
import nunjucks from 'nunjucks';
import YAML from 'yaml';
import { createHash } from 'node:crypto';
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
env.addFilter('regex_replace', (v: string, pattern: string, repl = '') => String(v).replace(new RegExp(pattern, 'g'), repl));
env.addFilter('hash', (v: string, algo = 'sha1') => createHash(algo).update(String(v)).digest('hex'));
env.addFilter('dict2items', (v: Record<string, unknown>) => Object.entries(v ?? {}).map(([key, value]) => ({ key, value })));
env.addFilter('items2dict', (v: { key: string; value: unknown }[]) => Object.fromEntries((v ?? []).map((i) => [i.key, i.value])));
env.addFilter('map_attr', (v: Record<string, unknown>[], attr: string) => (v ?? []).map((x) => x?.[attr]));
env.addFilter('mandatory', (v: unknown) => {
  if (v === undefined || v === null) throw new Error('mandatory variable is not defined');
  return v;
});
(env as any).addTest('truthy', (v: unknown) => Boolean(v));

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
