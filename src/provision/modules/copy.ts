// copy: a file from the controller (role files/) or inline `content` onto the host.
import { shellQuote } from '../transport/transport.ts';
import { readFileSync } from 'node:fs';
import { defineModule, noChange, type Planned } from './module.ts';
import { attributeChanges, fileDiff, gatherPathFor, normMode, sha256, writeStep, type PathFacts } from './files.ts';

export interface ContentArgs {
  dest: string;
  content?: string;
  src?: string;
  mode?: string | number;
  owner?: string;
  group?: string;
  validate?: string;
  backup?: boolean;
  /** Set by prepare: the bytes to write. */
  _bytes?: Buffer;
}

export const contentSchema = (source: object) => ({
  type: 'object',
  additionalProperties: false,
  required: ['dest'],
  properties: {
    dest: { type: 'string', pattern: '^/' },
    ...source,
    mode: { type: ['string', 'integer'], pattern: '^0?[0-7]{3,4}$' },
    owner: { type: 'string' },
    group: { type: 'string' },
    validate: { type: 'string', pattern: '%s' },
    backup: { type: 'boolean' },
    _bytes: {},
  },
});

/** Shared by copy and template: desired bytes vs the file on the host. */
export function planContent(args: ContentArgs, f: PathFacts): Planned {
  const bytes = args._bytes ?? Buffer.from(args.content ?? '');
  const mode = normMode(args.mode);
  const resource = `file ${args.dest}`;
  if (f.exists && f.type !== 'file') {
    return { changes: [{ action: '-/+', resource, detail: `${f.type} replaced by a file` }], steps: [{ script: `rm -rf -- ${shellQuote(args.dest)}`, display: `remove ${f.type} ${args.dest}` }, writeStep({ ...args, path: args.dest, content: bytes, mode, existed: false })] };
  }
  if (!f.exists) {
    return { changes: [{ action: '+', resource, detail: mode ? `mode ${mode}` : undefined, diff: fileDiff(args.dest, f, bytes) }], steps: [writeStep({ ...args, path: args.dest, content: bytes, mode: mode ?? '0644', existed: false })] };
  }
  if (f.sha256 !== sha256(bytes)) {
    const attrs = attributeChanges(args.dest, f, { mode, owner: args.owner, group: args.group });
    return {
      changes: [{ action: '~', resource, detail: ['content', ...attrs.detail].join(', '), diff: fileDiff(args.dest, f, bytes), unchanged: attrs.same }],
      steps: [writeStep({ ...args, path: args.dest, content: bytes, mode, existed: true })],
      result: { dest: args.dest },
    };
  }
  const attrs = attributeChanges(args.dest, f, { mode, owner: args.owner, group: args.group });
  if (attrs.script.length) return { changes: [{ action: '~', resource, detail: attrs.detail.join(', '), unchanged: attrs.same + 1 }], steps: [{ script: attrs.script.join(' && ') }] };
  return noChange({ dest: args.dest, checksum: f.sha256 });
}

export default defineModule<ContentArgs, PathFacts>({
  name: 'copy',
  batchFacts: true,
  schema: {
    ...contentSchema({ content: { type: 'string' }, src: { type: 'string' } }),
    oneOf: [{ required: ['content'] }, { required: ['src'] }],
  },
  prepare(args, ctx) {
    const bytes = args.src !== undefined ? readFileSync(ctx.findFile('files', args.src)) : Buffer.from(args.content ?? '');
    return { ...args, _bytes: bytes };
  },
  facts: (args, ctx) => gatherPathFor(ctx, args.dest, args._bytes),
  plan: planContent,
});
