// lineinfile, blockinfile and replace (ansible.builtin): one line, one marked block, or every
// match of a regular expression, in a text file on the host. Facts are the file (its text, as copy/template read it); the new text is computed
// purely from it and written through the same safe write path as copy (diff in the plan, temp
// file, atomic rename), so a plan shows the exact edit.
import { defineModule, type Planned } from './module.ts';
import { gatherPath, type PathFacts } from './files.ts';
import { planContent } from './copy.ts';

interface LineArgs {
  path: string;
  line?: string;
  regexp?: string;
  state?: 'present' | 'absent';
  insertafter?: string;
  insertbefore?: string;
  firstmatch?: boolean;
  create?: boolean;
  mode?: string | number;
  owner?: string;
  group?: string;
}

interface BlockArgs {
  path: string;
  block?: string;
  marker?: string;
  marker_begin?: string;
  marker_end?: string;
  state?: 'present' | 'absent';
  insertafter?: string;
  insertbefore?: string;
  create?: boolean;
  mode?: string | number;
  owner?: string;
  group?: string;
}

/** The file's lines (without their newlines) and whether it ended with one. */
function split(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
const join = (lines: string[]) => (lines.length ? lines.join('\n') + '\n' : '');

function indexOf(lines: string[], re: RegExp, first: boolean): number {
  let found = -1;
  for (let i = 0; i < lines.length; i++) if (re.test(lines[i])) { found = i; if (first) break; }
  return found;
}

/** Where a new line or block goes: after/before the last (first, with firstmatch) match, EOF by default. */
function insertAt(lines: string[], a: { insertafter?: string; insertbefore?: string; firstmatch?: boolean }): number {
  if (a.insertbefore !== undefined) {
    if (a.insertbefore === 'BOF') return 0;
    const i = indexOf(lines, new RegExp(a.insertbefore), a.firstmatch ?? false);
    return i >= 0 ? i : lines.length;
  }
  if (a.insertafter !== undefined && a.insertafter !== 'EOF') {
    const i = indexOf(lines, new RegExp(a.insertafter), a.firstmatch ?? false);
    return i >= 0 ? i + 1 : lines.length;
  }
  return lines.length;
}

/** The text of the file (or why not), for modules that edit it. */
function currentText(path: string, f: PathFacts, create: boolean | undefined): { text: string } | { failed: string; needs?: string } {
  if (!f.exists) return create ? { text: '' } : { failed: `${path} does not exist (create: true makes it)`, needs: `file ${path}` };
  if (f.type !== 'file') return { failed: `${path} is a ${f.type}, not a file` };
  if (f.binary || f.content === undefined) return { failed: `${path} is binary or larger than the diff cap: not edited line by line` };
  return { text: f.content };
}

export function editLine(text: string, a: LineArgs): string {
  const lines = split(text);
  const re = a.regexp !== undefined ? new RegExp(a.regexp) : undefined;
  if ((a.state ?? 'present') === 'absent') return join(lines.filter((l) => !(re ? re.test(l) : l === a.line)));
  const line = a.line!;
  if (re) {
    const i = indexOf(lines, re, a.firstmatch ?? false);
    if (i >= 0) {
      lines[i] = line;
      return join(lines);
    }
  } else if (lines.includes(line)) {
    return join(lines);
  }
  lines.splice(insertAt(lines, a), 0, line);
  return join(lines);
}

export function editBlock(text: string, a: BlockArgs): string {
  const lines = split(text);
  const marker = a.marker ?? '# {mark} ANSIBLE MANAGED BLOCK';
  const begin = marker.replace('{mark}', a.marker_begin ?? 'BEGIN');
  const end = marker.replace('{mark}', a.marker_end ?? 'END');
  const b = lines.indexOf(begin);
  const e = b >= 0 ? lines.indexOf(end, b + 1) : -1;
  const present = (a.state ?? 'present') === 'present' && (a.block ?? '') !== '';
  const body = present ? [begin, ...split(a.block!), end] : [];
  if (b >= 0 && e >= 0) {
    lines.splice(b, e - b + 1, ...body);
    return join(lines);
  }
  if (!present) return join(lines);
  lines.splice(insertAt(lines, a), 0, ...body);
  return join(lines);
}

function planEdit(path: string, a: { create?: boolean; mode?: string | number; owner?: string; group?: string }, f: PathFacts, edit: (text: string) => string): Planned {
  const cur = currentText(path, f, a.create);
  if ('failed' in cur) return { changes: [], steps: [], failed: cur.failed, needs: cur.needs };
  const next = edit(cur.text);
  // Nothing to write into a file that does not exist (state absent, create: true): no change.
  if (!f.exists && next === '') return { changes: [], steps: [], result: { path } };
  // Unchanged text and attributes: planContent sees the same checksum and plans nothing.
  return planContent({ dest: path, content: next, mode: a.mode, owner: a.owner, group: a.group }, f);
}

const common = {
  path: { type: 'string', minLength: 1 },
  state: { enum: ['present', 'absent'] },
  insertafter: { type: 'string' },
  insertbefore: { type: 'string' },
  create: { type: 'boolean' },
  mode: { type: ['string', 'integer'] },
  owner: { type: 'string' },
  group: { type: 'string' },
};

export const lineinfile = defineModule<LineArgs, PathFacts>({
  name: 'lineinfile',
  batchFacts: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: { ...common, line: { type: 'string' }, regexp: { type: 'string' }, firstmatch: { type: 'boolean' } },
    // present needs the line; absent needs the line or a regexp
    anyOf: [{ required: ['line'] }, { required: ['regexp'], properties: { state: { const: 'absent' } } }],
  },
  facts: (a, ctx) => gatherPath(ctx, a.path),
  plan: (a, f) => planEdit(a.path, a, f, (text) => editLine(text, a)),
});

export const blockinfile = defineModule<BlockArgs, PathFacts>({
  name: 'blockinfile',
  batchFacts: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: { ...common, block: { type: 'string' }, marker: { type: 'string', pattern: '\\{mark\\}' }, marker_begin: { type: 'string' }, marker_end: { type: 'string' } },
  },
  facts: (a, ctx) => gatherPath(ctx, a.path),
  plan: (a, f) => planEdit(a.path, a, f, (text) => editBlock(text, a)),
});

interface ReplaceArgs {
  path: string;
  regexp: string;
  replace?: string;
  after?: string;
  before?: string;
  mode?: string | number;
  owner?: string;
  group?: string;
}

/** Every match of `regexp` (multiline) replaced, only between `after` and `before` when given (Python's \\1 or JavaScript's $1). */
export function editReplace(text: string, a: ReplaceArgs): string {
  let start = 0;
  let end = text.length;
  if (a.after !== undefined) {
    const m = new RegExp(a.after, 'm').exec(text);
    if (!m) return text;
    start = m.index + m[0].length;
  }
  if (a.before !== undefined) {
    const m = new RegExp(a.before, 'm').exec(text.slice(start));
    if (!m) return text;
    end = start + m.index;
  }
  const repl = (a.replace ?? '').replace(/\\(\d)/g, '$$$1');
  return text.slice(0, start) + text.slice(start, end).replace(new RegExp(a.regexp, 'gm'), repl) + text.slice(end);
}

export const replace = defineModule<ReplaceArgs, PathFacts>({
  name: 'replace',
  batchFacts: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path', 'regexp'],
    properties: { path: common.path, regexp: { type: 'string', minLength: 1 }, replace: { type: 'string' }, after: { type: 'string' }, before: { type: 'string' }, mode: common.mode, owner: common.owner, group: common.group },
  },
  facts: (a, ctx) => gatherPath(ctx, a.path),
  plan: (a, f) => planEdit(a.path, { ...a, create: false }, f, (text) => editReplace(text, a)),
});
