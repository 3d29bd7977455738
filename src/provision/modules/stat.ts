// stat and slurp: read-only looks at the host, run for real in plans too.
import { defineModule, noChange } from './module.ts';
import { gatherPath, type PathFacts } from './files.ts';
import { shellQuote } from '../transport/transport.ts';

export const stat = defineModule<{ path: string }, PathFacts>({
  name: 'stat',
  batchFacts: true,
  schema: { type: 'object', additionalProperties: false, required: ['path'], properties: { path: { type: 'string' } } },
  facts: (a, ctx) => gatherPath(ctx, a.path, false),
  plan: (a, f) => noChange({ stat: { path: a.path, exists: f.exists, isdir: f.type === 'directory', isreg: f.type === 'file', islnk: f.type === 'link', mode: f.mode, pw_name: f.owner, gr_name: f.group, size: f.size, checksum: f.sha256, lnk_target: f.linkTarget } }),
});

export const slurp = defineModule<{ src: string }, { content?: string; error?: string }>({
  name: 'slurp',
  batchFacts: true,
  schema: { type: 'object', additionalProperties: false, required: ['src'], properties: { src: { type: 'string' } } },
  async facts(a, ctx) {
    const r = await ctx.exec(`base64 -w0 < ${shellQuote(a.src)}`);
    return r.code === 0 ? { content: r.stdout.trim() } : { error: r.stderr.trim() };
  },
  plan: (a, f) => (f.error !== undefined ? { changes: [], steps: [], failed: `cannot read ${a.src}: ${f.error}` } : noChange({ content: f.content, encoding: 'base64', source: a.src })),
});
