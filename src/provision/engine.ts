// The engine's front door, used by both CLIs and the tests: load, validate everything, then run.
import { resolve } from 'node:path';
import { Inventory } from './inventory.ts';
import { PlaybookLoader } from './playbook.ts';
import { Reporter } from './report.ts';
import { Runner, type RunResult } from './runner.ts';
import { Redactor } from './secret.ts';
import { readPlanFile, staleHosts, writePlanFile } from './plan-file.ts';
import { ProvisionError } from './errors.ts';

export interface EngineOptions {
  playbook: string;
  inventory: string;
  limit?: string;
  tags?: string[];
  skipTags?: string[];
  /** Parsed extra vars (highest precedence). */
  extraVars?: Record<string, unknown>;
  /** The raw `-e` arguments, recorded in plan files (never their values). */
  extraArgs?: string[];
  forks?: number;
  diff?: boolean;
  json?: boolean;
  verbose?: number;
  acceptNewHostKeys?: boolean;
  batch?: boolean;
  timings?: boolean;
  out?: NodeJS.WritableStream;
  redactor?: Redactor;
  /** The saved plan being applied (named in errors). */
  planFile?: string;
}

function runner(mode: 'plan' | 'apply', o: EngineOptions, quiet = false) {
  const inventory = Inventory.load(o.inventory);
  const plays = PlaybookLoader.load(o.playbook);
  const redactor = o.redactor ?? new Redactor();
  const sink = quiet ? { write: () => true } : o.out;
  const reporter = new Reporter(redactor, { json: o.json, verbose: o.verbose, diff: o.diff, out: sink as NodeJS.WritableStream });
  const r = new Runner({ mode, inventory, limit: o.limit, tags: o.tags, skipTags: o.skipTags, extraVars: o.extraVars, forks: o.forks, acceptNewHostKeys: o.acceptNewHostKeys, batch: o.batch, timings: o.timings, reporter, redactor });
  return { run: () => r.run(plays), reporter, redactor };
}

export async function plan(o: EngineOptions & { planOut?: string }): Promise<RunResult> {
  const { run, reporter, redactor } = runner('plan', o);
  const result = await run();
  reporter.plan(result.changes, [...result.stats].filter(([, s]) => s.failed || s.unreachable).map(([h]) => h));
  if (o.planOut) {
    writePlanFile(
      o.planOut,
      {
        playbook: resolve(o.playbook),
        inventory: resolve(o.inventory),
        options: { limit: o.limit, tags: o.tags, skipTags: o.skipTags, extra: o.extraArgs ?? [], forks: o.forks },
        fingerprints: result.fingerprints,
      },
      result.changes,
      redactor,
    );
  }
  return result;
}

export async function apply(o: EngineOptions): Promise<RunResult> {
  return runner('apply', o).run();
}

/** Applies what was planned (and approved): refuses, changing nothing, if a host's plan is different now. */
export async function applyApproved(o: EngineOptions, fingerprints: Record<string, string>, since = 'it was shown'): Promise<RunResult> {
  const now = await runner('plan', o, true).run();
  const stale = staleHosts(fingerprints, now.fingerprints);
  if (stale.length) throw new ProvisionError(`the plan is stale: ${stale.join(', ')} changed since ${since}; nothing was applied. Run plan again.`, o.planFile ? { file: o.planFile } : undefined);
  return runner('apply', o).run();
}

/** Applies a saved plan: re-plans quietly, refuses if any host's plan changed, then applies. */
export async function applyPlanFile(file: string, o: Omit<EngineOptions, 'playbook' | 'inventory'> & { parseExtra: (args: string[]) => Record<string, unknown> }): Promise<RunResult> {
  const saved = readPlanFile(file);
  const opts: EngineOptions = {
    ...o,
    playbook: saved.playbook,
    inventory: saved.inventory,
    limit: saved.options.limit,
    tags: saved.options.tags,
    skipTags: saved.options.skipTags,
    forks: saved.options.forks ?? o.forks,
    extraVars: o.parseExtra(saved.options.extra),
  };
  return applyApproved({ ...opts, planFile: file }, saved.fingerprints, `it was made (${saved.created})`);
}
