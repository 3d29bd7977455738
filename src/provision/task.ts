// One module task on one host for one loop item: render the arguments → the module's own
// argument hook → validate → facts → pure plan → (apply the steps) → changed_when / failed_when /
// until → report. The runner decides which tasks run where; this is what "running a task" means.
import type { Hash } from 'node:crypto';
import { ProvisionError, formatPlace } from './errors.ts';
import type { Host } from './inventory.ts';
import type { ModuleTask } from './playbook.ts';
import { modules } from './modules/index.ts';
import type { ModuleContext, Planned } from './modules/module.ts';
import type { HostFacts } from './facts.ts';
import type { Redactor } from './secret.ts';
import { evalCondition, renderDeep, renderString, withoutSideEffects } from './template.ts';
import { validate } from './schema.ts';
import type { PlannedChange, Reporter, Status } from './report.ts';
import type { ExecOptions, ExecResult } from './transport/transport.ts';

export class HostFailure extends Error {}

export interface TaskRun {
  mode: 'plan' | 'apply';
  redactor: Redactor;
  reporter: Reporter;
  recordChange(c: PlannedChange): void;
  /** The host the task runs for, and the one it runs on (delegate_to). */
  host: Host;
  target: Host;
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  /** A read-only script (facts, a step that only looks): may be answered by the prefetch. */
  factExec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  facts(): Promise<HostFacts>;
  findFile(kind: 'templates' | 'files', name: string): string;
  /** The host's registered results and set_fact values (set_fact writes here). */
  registered: Record<string, unknown>;
  /** Everything the host planned: what `apply plan.json` compares. */
  planHash: Hash;
  /** Resources earlier tasks of this plan change on the target ("file /etc/x"): see Planned.needs. */
  plannedResources: Set<string>;
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
const withResult = (ctx: Record<string, unknown>, task: ModuleTask, result: Record<string, unknown>) => ({ ...ctx, result, ...(task.register ? { [task.register]: result } : {}) });

/** The task's arguments for this host and item: rendered, through the module's hook, validated. */
function taskArgs(run: Pick<TaskRun, 'host'>, task: ModuleTask, ctx: Record<string, unknown>): Record<string, any> {
  const module = modules[task.module];
  const where = task.place;
  let args = renderDeep(task.args, ctx, where) as Record<string, any>;
  if (module.renderArgs) {
    args = module.renderArgs(task.args, args, { condition: (x) => evalCondition(x, ctx, where), render: (x) => renderString(x, ctx, where) });
  }
  validate(module.schema, args, `module ${task.module} arguments`, { host: run.host.name, task: task.name });
  return args;
}

class Captured extends Error {
  constructor(public script: string, public opts: ExecOptions) {
    super('captured');
  }
}

/**
 * The first fact script the task would run now, without running it (for the prefetch): the same
 * arguments path, then the module's facts with an exec that only records. undefined when the
 * module does not batch, or anything about the task cannot be known yet (it is then simply asked
 * for at its turn).
 */
export async function speculateFactScript(run: Pick<TaskRun, 'host' | 'target' | 'facts' | 'findFile'>, task: ModuleTask, ctx: Record<string, unknown>): Promise<{ script: string; stdin?: string | Buffer } | undefined> {
  const module = modules[task.module];
  if (!module.batchFacts) return undefined;
  try {
    const args = withoutSideEffects(() => taskArgs(run, task, ctx));
    const record = (script: string, opts: ExecOptions = {}): Promise<ExecResult> => {
      throw new Captured(script, opts);
    };
    await module.facts(args, { host: run.target, exec: record, facts: run.facts, findFile: run.findFile, vars: ctx, sensitive: () => {} });
  } catch (e) {
    if (e instanceof Captured) return { script: e.script, stdin: e.opts.stdin };
  }
  return undefined;
}

export async function runModuleTask(run: TaskRun, task: ModuleTask, ctx: Record<string, unknown>, item: unknown): Promise<Record<string, unknown>> {
  const module = modules[task.module];
  const where = task.place;
  const args = taskArgs(run, task, ctx);
  if (task.no_log) run.redactor.collect(Object.values(args).filter((v) => typeof v === 'string'));
  const mctx: ModuleContext = {
    host: run.target,
    exec: run.exec,
    facts: run.facts,
    findFile: run.findFile,
    vars: ctx,
    sensitive: (v) => run.redactor.add(v),
  };
  // Facts only read the host (the module contract): they never make earlier answers stale.
  const factCtx: ModuleContext = { ...mctx, exec: run.factExec };
  const realRun = run.mode === 'apply' || task.check_mode === false;
  let attempts = 0;
  for (;;) {
    attempts++;
    const prepared = module.prepare ? await module.prepare(args, mctx) : args;
    // A retry (until:) must see the host as it is now, not the batch's answer from before.
    const facts = await module.facts(prepared, attempts > 1 ? mctx : factCtx);
    let planned: Planned = module.plan(prepared, facts);
    if (!realRun && planned.failed && planned.needs && run.plannedResources.has(planned.needs)) {
      // The file (group, …) it needs is made by an earlier task of this very plan: not a failure.
      planned = { changes: [{ action: '~', resource: planned.needs, detail: 'known after apply: an earlier task of this plan creates it' }], steps: [] };
    }
    if (!realRun) for (const c of planned.changes) if (c.action !== '-' && c.action !== 'run') run.plannedResources.add(c.resource);
    if (planned.setFacts) Object.assign(run.registered, planned.setFacts);
    let result: Record<string, unknown> = { ...(planned.result ?? {}), changed: planned.changes.length > 0 };
    let failedMsg = planned.failed;
    if (!failedMsg && planned.steps.length) {
      if (realRun) {
        // Steps that only look (wait_for) leave the prefetched facts valid.
        const stepCtx = !module.apply && planned.steps.every((x) => x.readOnly) ? factCtx : mctx;
        const applied = module.apply ? await module.apply(planned, mctx) : await runSteps(planned, stepCtx);
        result = { ...result, ...(applied ?? {}) };
        if (typeof result.rc === 'number' && result.rc !== 0) failedMsg = `command exited ${result.rc}: ${String(result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ')}`;
      } else {
        result.planned = true;
        if (module.changesDecidedAtApply) result.changed = true;
      }
    }
    // A plan has not run the steps: a condition on what they return (rc, stdout) is decided at
    // apply time — in a plan it leaves the result as planned instead of failing as undefined.
    const notRun = !realRun && planned.steps.length > 0;
    const cond = (c: unknown, planned: boolean) => {
      try {
        return evalCondition(c, withResult(ctx, task, result), where);
      } catch (e) {
        if (notRun && e instanceof ProvisionError && e.message.startsWith('undefined variable:')) return planned;
        throw e;
      }
    };
    if (task.changed_when !== undefined) result.changed = cond(task.changed_when, Boolean(result.changed));
    if (task.failed_when !== undefined) failedMsg = cond(task.failed_when, false) ? failedMsg ?? `failed_when matched: ${task.failed_when}` : undefined;
    if (task.until !== undefined && attempts <= (task.retries ?? 3) && (notRun || !cond(task.until, true))) {
      if (!realRun) {
        result.skipped_reason = 'until: decided at apply time';
      } else {
        await sleep(task.delay * 1000);
        continue;
      }
    }
    if (task.until !== undefined && realRun && !evalCondition(task.until, withResult(ctx, task, result), where)) failedMsg ??= `until condition not met after ${attempts} attempts: ${task.until}`;
    result.attempts = attempts;
    const changesForReport = result.changed ? planned.changes : [];
    if (result.changed && !realRun) {
      for (const c of planned.changes) run.recordChange({ host: run.target.name, task: task.name, place: formatPlace(where), change: c });
    }
    run.planHash.update(JSON.stringify([task.id, item ?? null, planned.changes, planned.failed ?? null]));
    const status: Status = failedMsg ? (task.ignore_errors ? 'ignored' : 'failed') : result.changed ? 'changed' : 'ok';
    const msg = failedMsg ?? module.message?.(result);
    run.reporter.result(run.host.name + (task.delegate_to ? ` -> ${run.target.name}` : ''), status, { changes: changesForReport, msg, item, noLog: task.no_log, planned: !realRun });
    if (failedMsg) result.failed = true, result.msg = failedMsg;
    return result;
  }
}

async function runSteps(p: Planned, ctx: ModuleContext): Promise<Record<string, unknown>> {
  for (const step of p.steps) {
    const r = await ctx.exec(step.script, { stdin: step.stdin });
    if (r.code !== 0 && !step.okCodes?.includes(r.code)) {
      throw new HostFailure(`${step.display ?? step.script.split('\n')[0]} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    }
  }
  return {};
}
