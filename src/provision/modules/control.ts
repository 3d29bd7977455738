// Controller-only modules: set_fact, assert, fail, debug. They never touch the host.
import { defineModule, noChange } from './module.ts';

export const setFact = defineModule<Record<string, unknown>, {}>({
  name: 'set_fact',
  schema: { type: 'object', minProperties: 1 },
  facts: async () => ({}),
  plan: (a) => ({ changes: [], steps: [], setFacts: a, result: { ansible_facts: a } }),
});

interface AssertArgs {
  that: boolean[];
  fail_msg?: string;
  msg?: string;
  success_msg?: string;
  quiet?: boolean;
  /** Kept for messages: the expressions as written (set by the runner before rendering). */
  _exprs?: string[];
}

export const assert = defineModule<AssertArgs, {}>({
  name: 'assert',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['that'],
    // Ansible's arguments: msg is fail_msg's alias; quiet only shortens Ansible's own output.
    properties: { that: { type: ['array', 'string'], items: { type: ['boolean', 'string'] } }, fail_msg: { type: 'string' }, msg: { type: 'string' }, success_msg: { type: 'string' }, quiet: { type: 'boolean' }, _exprs: {} },
  },
  // `that` holds bare Jinja2 expressions, evaluated against the task's variables (not rendered).
  renderArgs(raw, rendered, evaluate) {
    const list = (raw as { that: unknown }).that;
    const exprs: string[] = Array.isArray(list) ? list.map(String) : [String(list)];
    return { ...rendered, that: exprs.map((x) => evaluate.condition(x)), _exprs: exprs };
  },
  facts: async () => ({}),
  plan(a) {
    const bad = a.that.findIndex((v) => !v);
    if (bad >= 0) return { changes: [], steps: [], failed: a.fail_msg ?? a.msg ?? `assertion failed: ${a._exprs?.[bad] ?? `#${bad + 1}`}` };
    return noChange({ msg: a.success_msg ?? 'all assertions passed' });
  },
});

export const fail = defineModule<{ msg?: string }, {}>({
  name: 'fail',
  schema: { type: 'object', additionalProperties: false, properties: { msg: { type: 'string' } } },
  facts: async () => ({}),
  plan: (a) => ({ changes: [], steps: [], failed: a.msg ?? 'failed as requested' }),
});

export const debug = defineModule<{ msg?: unknown; var?: string }, {}>({
  name: 'debug',
  schema: { type: 'object', additionalProperties: false, properties: { msg: {}, var: { type: 'string' } } },
  // `var: name` prints the variable's value, as `msg: "{{ name }}"` would.
  renderArgs: (_raw, rendered, evaluate) => (rendered.var !== undefined ? { msg: evaluate.render(`{{ ${rendered.var} }}`) } : rendered),
  facts: async () => ({}),
  plan: (a) => noChange({ msg: a.msg }),
  message: (result) => fmt(result.msg),
});

const fmt = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
