// group: a system group (ansible.builtin.group subset: name, state, system, gid). Facts: one
// `getent group NAME`, parsed purely.
import { shellQuote } from '../transport/transport.ts';
import { defineModule, noChange, type Planned } from './module.ts';

interface GroupArgs {
  name: string;
  state?: 'present' | 'absent';
  system?: boolean;
  gid?: number;
}

export interface GroupFacts {
  group?: { name: string; gid: number; members: string[] };
}

const cmd = (argv: string[]) => argv.map(shellQuote).join(' ');

export function parseGroup(out: string): GroupFacts {
  const g = out.split('\n').find((l) => l.split(':').length === 4)?.split(':');
  return g ? { group: { name: g[0], gid: Number(g[2]), members: g[3] ? g[3].split(',') : [] } } : {};
}

export function planGroup(a: GroupArgs, f: GroupFacts): Planned {
  const resource = `group ${a.name}`;
  if ((a.state ?? 'present') === 'absent') {
    if (!f.group) return noChange({ name: a.name, state: 'absent' });
    return { changes: [{ action: '-', resource, detail: `gid ${f.group.gid}` }], steps: [{ script: cmd(['groupdel', a.name]) }] };
  }
  if (!f.group) {
    const argv = ['groupadd', ...(a.system ? ['--system'] : []), ...(a.gid !== undefined ? ['--gid', String(a.gid)] : []), a.name];
    return { changes: [{ action: '+', resource, detail: a.gid !== undefined ? `gid ${a.gid}` : a.system ? 'system' : undefined }], steps: [{ script: cmd(argv) }] };
  }
  if (a.gid !== undefined && f.group.gid !== a.gid) {
    return { changes: [{ action: '~', resource, detail: `gid ${f.group.gid} → ${a.gid}` }], steps: [{ script: cmd(['groupmod', '--gid', String(a.gid), a.name]) }] };
  }
  return noChange({ name: a.name, gid: f.group.gid, members: f.group.members });
}

export default defineModule<GroupArgs, GroupFacts>({
  name: 'group',
  batchFacts: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', pattern: '^[a-z_][a-z0-9_-]{0,31}$' },
      state: { enum: ['present', 'absent'] },
      system: { type: 'boolean' },
      gid: { type: 'integer', minimum: 0 },
    },
  },
  async facts(a, ctx) {
    return parseGroup((await ctx.exec(`getent group ${shellQuote(a.name)} || true`)).stdout);
  },
  plan: planGroup,
});
