// file: directory / file (touch) / link / absent, with mode, owner, group.
import { shellQuote } from '../transport/transport.ts';
import { defineModule, noChange, type Planned } from './module.ts';
import { attributeChanges, gatherPath, normMode, type PathFacts } from './files.ts';

interface FileArgs {
  path: string;
  state?: 'file' | 'directory' | 'link' | 'absent' | 'touch';
  src?: string;
  mode?: string | number;
  owner?: string;
  group?: string;
  recurse?: boolean;
}

export function planFile(a: FileArgs, f: PathFacts): Planned {
  const p = shellQuote(a.path);
  const state = a.state ?? 'file';
  const mode = normMode(a.mode);
  const want = { mode, owner: a.owner, group: a.group };
  if (state === 'absent') {
    if (!f.exists) return noChange({ path: a.path, state: 'absent' });
    return { changes: [{ action: '-', resource: `${f.type === 'directory' ? 'directory' : f.type === 'link' ? 'link' : 'file'} ${a.path}` }], steps: [{ script: `rm -rf ${p}`, display: `rm -rf ${a.path}` }] };
  }
  if (state === 'link') {
    if (f.exists && f.type === 'link' && f.linkTarget === a.src) return noChange({ path: a.path, state: 'link' });
    const action = f.exists ? (f.type === 'link' ? '~' : '-/+') : '+';
    return { changes: [{ action, resource: `link ${a.path}`, detail: `→ ${a.src}${f.linkTarget ? ` (was ${f.linkTarget})` : ''}` }], steps: [{ script: `ln -sfn ${shellQuote(a.src!)} ${p}` }] };
  }
  const kind = state === 'directory' ? 'directory' : 'file';
  if (!f.exists) {
    if (state === 'file') return { changes: [], steps: [], failed: `file ${a.path} does not exist (state: file only sets attributes; use state: touch or copy/template to create it)`, needs: `file ${a.path}` };
    const create = kind === 'directory' ? `mkdir -p ${p}` : `touch ${p}`;
    const m = mode ?? (kind === 'directory' ? '0755' : '0644');
    const attrs = attributeChanges(a.path, { exists: true }, { mode: m, owner: a.owner, group: a.group });
    const detail = [`mode ${m}`, a.owner && `owner ${a.owner}`, a.group && `group ${a.group}`].filter(Boolean).join(', ');
    return { changes: [{ action: '+', resource: `${kind} ${a.path}`, detail }], steps: [{ script: [create, ...attrs.script].join(' && ') }] };
  }
  if (f.type !== kind && !(kind === 'file' && state === 'touch' && f.type === 'file')) {
    return { changes: [], steps: [], failed: `${a.path} is a ${f.type}, not a ${kind}` };
  }
  const attrs = attributeChanges(a.path, f, want);
  if (a.recurse && kind === 'directory' && (a.owner || a.group)) {
    // Recursive ownership cannot be compared cheaply file by file; say so instead of pretending.
    attrs.script.push(`chown -R ${shellQuote(`${a.owner ?? ''}${a.group ? ':' + a.group : ''}`)} ${p}`);
  }
  if (!attrs.detail.length) return noChange({ path: a.path, state, mode: f.mode, owner: f.owner, group: f.group });
  return { changes: [{ action: '~', resource: `${kind} ${a.path}`, detail: attrs.detail.join(', '), unchanged: attrs.same }], steps: [{ script: attrs.script.join(' && ') }] };
}

export default defineModule<FileArgs, PathFacts>({
  name: 'file',
  batchFacts: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: { type: 'string', pattern: '^/' },
      state: { enum: ['file', 'directory', 'link', 'absent', 'touch'] },
      src: { type: 'string' },
      mode: { type: ['string', 'integer'], pattern: '^0?[0-7]{3,4}$' },
      owner: { type: 'string' },
      group: { type: 'string' },
      recurse: { type: 'boolean' },
    },
    if: { properties: { state: { const: 'link' } }, required: ['state'] },
    then: { required: ['src'] },
  },
  facts: (a, ctx) => gatherPath(ctx, a.path, false),
  plan: planFile,
});
