// command / shell: run a command on the host. A plan never pretends: it says "would run" and
// shows the command; only `creates`/`removes` (checked for real) can make it a no-op.
import { shellQuote } from '../transport/transport.ts';
import { defineModule, noChange, type ModuleContext, type Planned } from './module.ts';

interface CommandArgs {
  cmd?: string;
  argv?: string[];
  chdir?: string;
  creates?: string;
  removes?: string;
  stdin?: string;
}

interface CommandFacts {
  createsExists?: boolean;
  removesExists?: boolean;
}

function script(a: CommandArgs): string {
  const cmd = a.argv ? a.argv.map(shellQuote).join(' ') : a.cmd!;
  return a.chdir ? `cd ${shellQuote(a.chdir)} && ${cmd}` : cmd;
}

export function planCommand(a: CommandArgs, f: CommandFacts): Planned {
  if (a.creates && f.createsExists) return noChange({ skipped_reason: `${a.creates} exists`, rc: 0, stdout: '', stderr: '' });
  if (a.removes && !f.removesExists) return noChange({ skipped_reason: `${a.removes} does not exist`, rc: 0, stdout: '', stderr: '' });
  const s = script(a);
  return { changes: [{ action: 'run', resource: 'command', detail: s }], steps: [{ script: s, stdin: a.stdin, display: `would run: ${s}` }] };
}

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    cmd: { type: 'string', minLength: 1 },
    argv: { type: 'array', items: { type: 'string' }, minItems: 1 },
    chdir: { type: 'string' },
    creates: { type: 'string' },
    removes: { type: 'string' },
    stdin: { type: 'string' },
  },
  oneOf: [{ required: ['cmd'] }, { required: ['argv'] }],
};

async function facts(a: CommandArgs, ctx: ModuleContext): Promise<CommandFacts> {
  if (!a.creates && !a.removes) return {};
  const test = (p?: string) => (p ? `[ -e ${shellQuote(p)} ] && echo y || echo n` : 'echo n');
  const r = await ctx.exec(`${test(a.creates)}; ${test(a.removes)}`);
  const [c, rm] = r.stdout.trim().split('\n');
  return { createsExists: c === 'y', removesExists: rm === 'y' };
}

/** Runs the command and hands rc/stdout/stderr to `register`; a non-zero rc fails the task. */
async function apply(p: Planned, ctx: ModuleContext) {
  const step = p.steps[0];
  const r = await ctx.exec(step.script, { stdin: step.stdin });
  const result = { rc: r.code, stdout: r.stdout.trimEnd(), stderr: r.stderr.trimEnd(), stdout_lines: r.stdout.trimEnd().split('\n'), cmd: step.script };
  return result;
}

// A plan cannot know what a command would change: it counts as a change (changed_when can say otherwise).
export const command = defineModule<CommandArgs, CommandFacts>({ name: 'command', batchFacts: true, schema, facts, plan: planCommand, apply, changesDecidedAtApply: true, freeFormArg: 'cmd' });
export const shell = defineModule<CommandArgs, CommandFacts>({ name: 'shell', batchFacts: true, schema, facts, plan: planCommand, apply, changesDecidedAtApply: true, freeFormArg: 'cmd' });
