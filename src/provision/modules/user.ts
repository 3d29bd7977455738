// user: system service users, an Ansible-compatible subset of ansible.builtin.user (present / absent,
// system, shell, home, create_home, primary group, comment). The defaults (nologin shell, /nonexistent
// home, no home directory, a group named like the user) shape a NEW user; an existing one is only
// changed where the task names a value that differs, so a user a package created keeps its own home.
// Facts: one `getent passwd` (+ `getent group` of the primary group), parsed purely.
import { shellQuote } from '../transport/transport.ts';
import { defineModule, noChange, type Planned } from './module.ts';

interface UserArgs {
  name: string;
  state?: 'present' | 'absent';
  system?: boolean;
  shell?: string;
  home?: string;
  create_home?: boolean;
  /** Primary group; absent = a group of the user's name, created with it (useradd --user-group). */
  group?: string;
  comment?: string;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  comment: string;
  home: string;
  shell: string;
}

export interface UserFacts {
  /** The passwd entry; absent = no such user. */
  user?: PasswdEntry;
  /** The primary group looked up: the wanted one (state: present) or the user's own (state: absent). */
  group?: { name: string; gid: number };
}

const cmd = (argv: string[]) => argv.map(shellQuote).join(' ');

/** `getent passwd NAME`, a "--" line, `getent group GROUP` → facts. */
export function parseGetent(out: string): UserFacts {
  const [passwd = '', group = ''] = out.split(/^--$/m);
  const facts: UserFacts = {};
  const p = passwd.split('\n').find((l) => l.split(':').length === 7)?.split(':');
  if (p) facts.user = { name: p[0], uid: Number(p[2]), gid: Number(p[3]), comment: p[4], home: p[5], shell: p[6] };
  const g = group.split('\n').find((l) => l.split(':').length === 4)?.split(':');
  if (g) facts.group = { name: g[0], gid: Number(g[2]) };
  return facts;
}

export function planUser(a: UserArgs, f: UserFacts): Planned {
  const resource = `user ${a.name}`;
  const u = f.user;
  if ((a.state ?? 'present') === 'absent') {
    if (!u) return noChange({ name: a.name, state: 'absent' });
    // userdel (USERGROUPS_ENAB yes, Debian's default) removes the group named like the user with it,
    // unless another user still has it as primary group.
    const group = f.group?.gid === u.gid ? f.group.name : undefined;
    const note = group === a.name ? `its group ${group} goes with it unless another user has it as primary group` : group ? `primary group ${group} stays` : `primary gid ${u.gid}`;
    const detail = `uid ${u.uid}, ${note}`;
    return { changes: [{ action: '-', resource, detail }], steps: [{ script: cmd(['userdel', a.name]) }] };
  }
  const groupName = a.group ?? a.name;
  const groupExists = f.group?.name === groupName;
  if (!u) {
    // useradd --user-group refuses a group that already exists: join it instead. Another named group must exist.
    if (!groupExists && groupName !== a.name) return { changes: [], steps: [], failed: `group ${groupName} does not exist: create it first (only a group named like the user is created with it)`, needs: `group ${groupName}` };
    const system = a.system ?? false;
    const createHome = a.create_home ?? !system;
    const home = a.home ?? (system ? '/nonexistent' : undefined);
    const shell = a.shell ?? (system ? '/usr/sbin/nologin' : undefined);
    const argv = ['useradd'];
    if (system) argv.push('--system');
    argv.push(...(groupExists ? ['--gid', groupName] : ['--user-group']));
    argv.push(createHome ? '--create-home' : '--no-create-home');
    if (home !== undefined) argv.push('--home-dir', home);
    if (shell !== undefined) argv.push('--shell', shell);
    if (a.comment !== undefined) argv.push('--comment', a.comment);
    argv.push(a.name);
    const detail = [system && 'system', `group ${groupName}${groupExists ? '' : ' (new)'}`, home && `home ${home}`, shell && `shell ${shell}`].filter(Boolean).join(', ');
    return { changes: [{ action: '+', resource, detail }], steps: [{ script: cmd(argv) }] };
  }
  const argv = ['usermod'];
  const detail: string[] = [];
  if (a.group !== undefined && !(groupExists && f.group!.gid === u.gid)) {
    if (!groupExists) return { changes: [], steps: [], failed: `group ${a.group} does not exist: create it first`, needs: `group ${a.group}` };
    argv.push('--gid', a.group);
    detail.push(`group gid ${u.gid} → ${a.group}`);
  }
  for (const [key, opt] of [['home', '--home'], ['shell', '--shell'], ['comment', '--comment']] as const) {
    if (a[key] === undefined || a[key] === u[key]) continue;
    argv.push(opt, a[key]);
    detail.push(`${key} ${u[key] || "''"} → ${a[key] || "''"}`);
  }
  if (!detail.length) return noChange({ name: u.name, uid: u.uid, gid: u.gid, home: u.home, shell: u.shell });
  argv.push(a.name);
  return { changes: [{ action: '~', resource, detail: detail.join(', ') }], steps: [{ script: cmd(argv) }] };
}

const NAME = '^[a-z_][a-z0-9_-]{0,31}$';

export default defineModule<UserArgs, UserFacts>({
  name: 'user',
  batchFacts: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', pattern: NAME },
      state: { enum: ['present', 'absent'] },
      system: { type: 'boolean' },
      // passwd(5) fields: no ":" and no newline.
      shell: { type: 'string', pattern: '^/[^:\n]*$' },
      home: { type: 'string', pattern: '^/[^:\n]*$' },
      create_home: { type: 'boolean' },
      group: { type: 'string', pattern: NAME },
      comment: { type: 'string', pattern: '^[^:\n]*$' },
    },
  },
  async facts(a, ctx) {
    const name = shellQuote(a.name);
    const group = (a.state ?? 'present') === 'absent' ? `"$(getent passwd ${name} | cut -d: -f4)"` : shellQuote(a.group ?? a.name);
    const r = await ctx.exec(`getent passwd ${name}; echo --; getent group ${group}; true`);
    return parseGetent(r.stdout);
  },
  plan: planUser,
});
