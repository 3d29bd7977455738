// Runs plays: Ansible's linear strategy (each task on every host of the batch, in parallel up to
// `forks`), with blocks, loops, handlers, retries, run_once and delegate_to. `plan` and `apply`
// are the same walk; in plan mode the planned steps are recorded instead of executed.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ProvisionError, formatPlace } from './errors.ts';
import type { Host, Inventory } from './inventory.ts';
import { serialBatchSize, type BlockTask, type ModuleTask, type Play, type Task } from './playbook.ts';
import { FactCache, ansibleFactVars } from './facts.ts';
import { Redactor, reveal } from './secret.ts';
import { evalCondition, isTemplated, onLookupSecret, renderDeep, renderString, withoutSideEffects } from './template.ts';
import { baseVars, hostvarsProxy, resolveVars } from './vars.ts';
import { emptyStats, Reporter, type HostStats, type PlannedChange } from './report.ts';
import { LocalTransport } from './transport/local.ts';
import { SshTransport } from './transport/ssh.ts';
import { UnreachableError, type ExecOptions, type Transport } from './transport/transport.ts';
import { loadPending, pendingFile, savePending } from './handlers.ts';
import { runModuleTask, speculateFactScript } from './task.ts';
import { Prefetch, type FactRequest } from './prefetch.ts';
import { modules } from './modules/index.ts';

export interface RunOptions {
  mode: 'plan' | 'apply';
  inventory: Inventory;
  limit?: string;
  tags?: string[];
  skipTags?: string[];
  extraVars?: Record<string, unknown>;
  forks?: number;
  acceptNewHostKeys?: boolean;
  /** Gather the coming tasks' facts in one round trip per host (prefetch.ts); default on. */
  batch?: boolean;
  /** Report where the time went (Reporter.timings). */
  timings?: boolean;
  reporter: Reporter;
  redactor: Redactor;
}

export interface RunResult {
  stats: Map<string, HostStats>;
  changes: PlannedChange[];
  /** host → sha256 of everything it planned: what `apply plan.json` compares. */
  fingerprints: Record<string, string>;
  failed: boolean;
}

class HostRun {
  stats = emptyStats();
  failed = false;
  unreachable = false;
  registered: Record<string, unknown> = {};
  notified = new Set<string>();
  /** The current play's notifications, persisted on the host until the handler ran. */
  pending = new Set<string>();
  base: Record<string, unknown> = {};
  facts: FactCache;
  /** Every command on the host goes through it: fact answers, and what makes them stale. */
  prefetch: Prefetch;
  planHash = createHash('sha256');
  /** Resources this plan changes on the host so far (task.ts: a later task that needs one is "known after apply"). */
  plannedResources = new Set<string>();
  constructor(public host: Host, public transport: Transport, batch: boolean) {
    this.facts = new FactCache(transport);
    this.prefetch = new Prefetch(transport, batch);
  }
  get active() {
    return !this.failed && !this.unreachable;
  }
}


export class Runner {
  private runs = new Map<string, HostRun>();
  private changes: PlannedChange[] = [];
  private extra: Record<string, unknown>;
  /** Milliseconds spent per phase (wall clock, all hosts in parallel). */
  private spent = { connect: 0, facts: 0, tasks: 0, handlers: 0 };
  private taskCount = 0;

  constructor(private o: RunOptions) {
    this.extra = o.extraVars ?? {};
    o.redactor.collect(this.extra);
    for (const h of o.inventory.hosts.values()) o.redactor.collect(h.vars);
    for (const g of o.inventory.groups.values()) o.redactor.collect(g.vars);
    // Passwords from lookup('password', …) are secrets of this run too.
    onLookupSecret((v) => o.redactor.add(v));
  }

  private transportFor(host: Host): Transport {
    return host.connection === 'local' ? new LocalTransport(host) : new SshTransport(host, { acceptNewHostKeys: this.o.acceptNewHostKeys });
  }

  private hostRun(host: Host): HostRun {
    let r = this.runs.get(host.name);
    if (!r) this.runs.set(host.name, (r = new HostRun(host, this.transportFor(host), this.o.batch ?? true)));
    return r;
  }

  /** Milliseconds from the process's start to the first play (Node, loading, parsing). */
  private startedAt = 0;

  async run(plays: Play[]): Promise<RunResult> {
    this.startedAt = performance.now();
    try {
      for (const play of plays) await this.runPlay(play);
    } finally {
      await Promise.all([...this.runs.values()].map((r) => r.transport.close()));
    }
    const stats = new Map([...this.runs].map(([n, r]) => [n, r.stats]));
    this.o.reporter.recap(stats);
    if (this.o.timings) {
      const b = [...this.runs.values()].reduce((a, r) => ({ batches: a.batches + r.prefetch.stats.batches, batched: a.batched + r.prefetch.stats.batched, hits: a.hits + r.prefetch.stats.hits }), { batches: 0, batched: 0, hits: 0 });
      this.o.reporter.timings({ startup: Math.round(this.startedAt), ...this.spent, taskRuns: this.taskCount, ...b });
    }
    const fingerprints = Object.fromEntries([...this.runs].map(([n, r]) => [n, r.planHash.copy().digest('hex')]));
    return { stats, changes: this.changes, fingerprints, failed: [...this.runs.values()].some((r) => r.failed || r.unreachable) };
  }

  private async runPlay(play: Play) {
    if (isTemplated(play.name)) play = { ...play, name: String(renderString(play.name, reveal(this.extra) as object, play.place)) };
    for (const r of play.roles) this.o.redactor.collect(r.defaults);
    this.o.redactor.collect(play.vars);
    let hosts = this.o.inventory.select(play.hosts, `play "${play.name}" hosts`);
    if (this.o.limit !== undefined) {
      const allowed = new Set(this.o.inventory.select(this.o.limit, '--limit').map((h) => h.name));
      hosts = hosts.filter((h) => allowed.has(h.name));
    }
    this.o.reporter.play(play.name, hosts.map((h) => h.name));
    if (!hosts.length) {
      this.o.reporter.warn(`play "${play.name}": no hosts matched`);
      return;
    }
    try {
      for (const batch of this.batches(hosts, play.serial)) {
        const runs = batch.map((h) => this.hostRun(h)).filter((r) => r.active);
        await this.timed('connect', () => this.parallel(runs, (r) => this.connect(r, play)));
        const live = runs.filter((r) => r.active);
        for (const r of live) r.base = this.baseVars(r, play);
        // Each play sees the hosts as they are now (an earlier play may have brought wg0 up).
        if (play.gather_facts) {
          await this.timed('facts', () => this.parallel(live, async (r) => {
            r.facts.invalidate();
            const facts = await this.guard(r, () => r.facts.get());
            r.base.facts = facts;
            if (facts) Object.assign(r.base, ansibleFactVars(facts));
          }));
        }
        await this.timed('tasks', () => this.runTasks(play, play.tasks, live));
        await this.timed('handlers', () => this.flushHandlers(play, live));
      }
    } catch (e) {
      // any_errors_fatal / max_fail_percentage end the whole play: later batches never start.
      if (!(e instanceof AbortPlay)) throw e;
      this.o.reporter.warn(e.message);
    }
  }

  private async timed(phase: keyof Runner['spent'], fn: () => Promise<void>) {
    const t0 = performance.now();
    try {
      await fn();
    } finally {
      this.spent[phase] += performance.now() - t0;
    }
  }

  private batches(hosts: Host[], serial?: number | string): Host[][] {
    if (serial === undefined) return [hosts];
    const n = serialBatchSize(serial, hosts.length);
    const out: Host[][] = [];
    for (let i = 0; i < hosts.length; i += n) out.push(hosts.slice(i, i + n));
    return out;
  }

  private async connect(r: HostRun, play: Play) {
    try {
      await r.transport.connect();
      // This play's notifications only (handlers.ts: one file per play).
      r.pending = new Set();
      const pending = await loadPending(r.prefetch, this.become(play, r), pendingFile(play));
      const names = new Set(play.handlers.flatMap((h) => [h.name, ...h.listen]));
      for (const p of pending) {
        r.pending.add(p);
        if (names.has(p)) {
          r.notified.add(p);
          this.o.reporter.warn(`${r.host.name}: handler "${p}" was notified by an earlier run that failed before handlers ran; it will run at the end of this play`);
        }
      }
    } catch (e) {
      this.markUnreachable(r, e as Error);
    }
  }

  private markUnreachable(r: HostRun, e: Error) {
    if (r.unreachable) return;
    r.unreachable = true;
    r.stats.unreachable++;
    this.o.reporter.result(r.host.name, 'unreachable', { msg: e.message });
  }

  private async guard<T>(r: HostRun, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof UnreachableError) this.markUnreachable(r, e);
      else throw e;
      return undefined;
    }
  }

  private become(play: Play, r: HostRun, task?: Task): boolean {
    return task?.become ?? (play.become || r.host.become);
  }

  /** A host's variables for a play (vars.ts): precedence, magic variables, resolution. */
  private baseVars(r: HostRun, play: Play): Record<string, unknown> {
    return baseVars({ inventory: this.o.inventory, host: r.host, play, extra: this.extra, hostvars: this.hostvars() });
  }

  /** `hostvars[name]`: another host's variables as they are now (facts it registered included). */
  private hostvars(): object {
    return hostvarsProxy((name) => {
      const host = this.o.inventory.hosts.get(name);
      if (!host) return undefined;
      // The inventory's variables first: while a play's variables are being resolved, another
      // host's own resolved variables (r.base) may not exist yet.
      const r = this.runs.get(name);
      return { ...this.o.inventory.varsOf(host), ...(r ? { ...r.base, ...r.registered } : {}) };
    });
  }

  private async parallel<T>(items: T[], fn: (x: T) => Promise<void>) {
    const forks = this.o.forks ?? 10;
    let i = 0;
    const workers = Array.from({ length: Math.min(forks, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]);
    });
    await Promise.all(workers);
  }

  private selected(task: Task): boolean {
    const tags = new Set(task.tags);
    if (tags.has('always')) return !this.o.skipTags?.includes('always');
    if (this.o.skipTags?.some((t) => tags.has(t))) return false;
    if (this.o.tags?.length) return this.o.tags.some((t) => tags.has(t) || (t === 'untagged' && !tags.size) || t === 'all');
    return !tags.has('never');
  }

  private async runTasks(play: Play, tasks: Task[], runs: HostRun[]) {
    // host → the prefetch generation its answers for this list were fetched at
    const fetchedAt = new Map<HostRun, number>();
    for (const [i, task] of tasks.entries()) {
      const active = runs.filter((r) => r.active);
      if (!active.length) return;
      const cold = active.filter((r) => r.prefetch.enabled && fetchedAt.get(r) !== r.prefetch.generation);
      if (cold.length) {
        await this.parallel(cold, async (r) => {
          // All the coming tasks at first; after a change, a few at a time (changes tend to follow changes).
          await this.guard(r, () => this.prefetchFacts(play, tasks.slice(i), r, fetchedAt.has(r) ? 4 : Infinity));
          fetchedAt.set(r, r.prefetch.generation);
        });
      }
      if (task.kind === 'meta') {
        await this.flushHandlers(play, active);
        continue;
      }
      if (task.kind === 'block') {
        await this.runBlock(play, task, active);
        continue;
      }
      if (!this.selected(task)) continue;
      this.o.reporter.task(task.name, formatPlace(task.place));
      const targets = task.run_once ? active.slice(0, 1) : active;
      this.taskCount++;
      await this.parallel(targets, (r) => this.runTaskOnHost(play, task, r));
      if (task.run_once && task.register && targets[0]) for (const r of active) r.registered[task.register] = targets[0].registered[task.register];
      this.checkFailLimits(play, runs);
    }
  }

  /**
   * Asks the host, in one batch, for the fact scripts the next `window` module tasks (blocks
   * included) would run with the variables as they are now. Anything not knowable yet is left
   * to its task.
   */
  private async prefetchFacts(play: Play, tasks: Task[], r: HostRun, window: number) {
    const requests: FactRequest[] = [];
    const flat = (ts: Task[]): ModuleTask[] => ts.flatMap((t) => (t.kind === 'block' ? flat(t.block) : t.kind === 'meta' ? [] : [t]));
    let n = 0;
    for (const task of flat(tasks)) {
      if (n >= window) break;
      if (!this.selected(task) || task.delegate_to || !modules[task.module]?.batchFacts) continue;
      n++;
      try {
        // What the task's turn would render, with nothing created on the way (lookups refuse).
        const contexts = withoutSideEffects(() => {
          if (task.loop === undefined) return [this.ctx(r, task)];
          const loopCtx = this.ctx(r, { ...task, vars: {} });
          const v = typeof task.loop === 'string' ? renderString(task.loop, loopCtx, task.place) : renderDeep(task.loop, loopCtx, task.place);
          return Array.isArray(v) ? v.map((item) => this.ctx(r, task, { [task.loop_var]: item })) : [];
        }).filter((ctx) => task.when === undefined || withoutSideEffects(() => evalCondition(task.when, ctx, task.place)));
        const on = { host: r.host, target: r.host, facts: () => r.facts.get(), findFile: (kind: 'templates' | 'files', name: string) => this.findFile(play, task, kind, name) };
        for (const ctx of contexts) {
          const s = await speculateFactScript(on, task, ctx);
          if (s) requests.push({ ...s, become: this.become(play, r, task) });
        }
      } catch {
        // not knowable yet (a variable registered later, …): the task asks at its turn
      }
    }
    await r.prefetch.fetch(requests);
  }

  private checkFailLimits(play: Play, runs: HostRun[]) {
    const failed = runs.filter((r) => r.failed || r.unreachable).length;
    if (!failed) return;
    if (play.any_errors_fatal) {
      for (const r of runs) r.failed = true;
      throw new AbortPlay(`play "${play.name}": a host failed and any_errors_fatal is set; stopping on all hosts`);
    }
    if (play.max_fail_percentage !== undefined && (failed / runs.length) * 100 > play.max_fail_percentage) {
      for (const r of runs) r.failed = true;
      throw new AbortPlay(`play "${play.name}": ${failed} of ${runs.length} hosts failed, more than max_fail_percentage ${play.max_fail_percentage}%`);
    }
  }

  private async runBlock(play: Play, block: BlockTask, runs: HostRun[]) {
    const inside = runs.filter((r) => block.when === undefined || evalCondition(block.when, this.ctx(r, block), block.place));
    if (!inside.length) return;
    const scoped = (tasks: Task[]) => tasks.map((t) => ({ ...t, vars: { ...block.vars, ...t.vars } }));
    await this.runTasks(play, scoped(block.block), inside);
    const failedHere = inside.filter((r) => r.failed && !r.unreachable);
    if (block.rescue.length && failedHere.length) {
      for (const r of failedHere) {
        r.failed = false;
        r.stats.failed--;
        r.stats.rescued++;
      }
      await this.runTasks(play, scoped(block.rescue), failedHere);
    }
    if (block.always.length) {
      const stillFailed = inside.filter((r) => r.failed && !r.unreachable);
      for (const r of stillFailed) r.failed = false;
      await this.runTasks(play, scoped(block.always), inside.filter((r) => !r.unreachable));
      for (const r of stillFailed) r.failed = true;
    }
  }

  private ctx(r: HostRun, task: Task, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const taskVars = Object.keys(task.vars).length ? resolveVars({ ...r.base, ...r.registered, ...this.extra, ...extra, ...task.vars }) : {};
    return reveal({ ...r.base, ...taskVars, ...r.registered, ...this.extra, ...extra }) as Record<string, unknown>;
  }

  private async runTaskOnHost(play: Play, task: ModuleTask, r: HostRun) {
    const host = r.host.name;
    try {
      let items: unknown[] | undefined;
      if (task.loop !== undefined) {
        // Task vars may use the loop item, so the loop itself is rendered without them.
        const loopCtx = this.ctx(r, { ...task, vars: {} });
        const v = typeof task.loop === 'string' ? renderString(task.loop, loopCtx, task.place) : renderDeep(task.loop, loopCtx, task.place);
        if (!Array.isArray(v)) throw new ProvisionError(`loop must be a list, got ${typeof v}`, task.place, { host, task: task.name });
        items = v;
      }
      const results: Record<string, unknown>[] = [];
      let anyChanged = false;
      let anyRan = false;
      for (const item of items ?? [undefined]) {
        const extra = items ? { [task.loop_var]: item } : {};
        const ctx = this.ctx(r, task, extra);
        if (task.when !== undefined && !evalCondition(task.when, ctx, task.place)) {
          results.push({ skipped: true, changed: false, item });
          continue;
        }
        anyRan = true;
        const res = await this.runOne(play, task, r, ctx, items ? item : undefined);
        if (res.changed) anyChanged = true;
        results.push(items ? { ...res, item } : res);
        if (res.failed) break;
      }
      const combined = items ? { results, changed: anyChanged, failed: results.some((x) => x.failed) } : results[0];
      if (task.register) r.registered[task.register] = combined;
      if (!anyRan) {
        r.stats.skipped++;
        this.o.reporter.result(host, 'skipped', {});
        return;
      }
      if (combined.failed) {
        if (task.ignore_errors) r.stats.ignored++;
        else {
          r.stats.failed++;
          r.failed = true;
        }
        return;
      }
      if (anyChanged) {
        r.stats.changed++;
        r.stats.ok++;
        if (task.notify.length) await this.notify(play, task, r);
      } else r.stats.ok++;
    } catch (e) {
      if (e instanceof UnreachableError) return this.markUnreachable(r, e);
      const err = e instanceof ProvisionError ? e : new ProvisionError((e as Error).message, task.place);
      err.place ??= task.place;
      err.details.host ??= host;
      err.details.task ??= task.name;
      r.stats.failed++;
      r.failed = true;
      this.o.reporter.result(host, 'failed', { msg: err.describe(), noLog: task.no_log });
    }
  }

  private async notify(play: Play, task: Task, r: HostRun) {
    const known = new Set(play.handlers.flatMap((h) => [h.name, ...h.listen]));
    for (const n of task.notify) {
      if (!known.has(n)) throw new ProvisionError(`notify: no handler named "${n}" in play "${play.name}"`, task.place, { task: task.name });
      r.notified.add(n);
    }
    if (this.o.mode === 'apply') {
      const before = r.pending.size;
      for (const n of task.notify) r.pending.add(n);
      if (r.pending.size !== before) await savePending(r.prefetch, this.become(play, r), pendingFile(play), [...r.pending]);
    }
  }

  /** One task, one host, one loop item (task.ts), with this run's reporting and the delegated target. */
  private async runOne(play: Play, task: ModuleTask, r: HostRun, ctx: Record<string, unknown>, item: unknown): Promise<Record<string, unknown>> {
    const target = task.delegate_to ? this.delegate(task, r) : r;
    return runModuleTask({
      mode: this.o.mode,
      redactor: this.o.redactor,
      reporter: this.o.reporter,
      recordChange: (c) => this.changes.push(c),
      host: r.host,
      target: target.host,
      exec: (script: string, opts?: ExecOptions) => target.prefetch.exec(script, { become: this.become(play, r, task), ...opts }),
      factExec: (script: string, opts?: ExecOptions) => target.prefetch.factExec(script, { become: this.become(play, r, task), ...opts }),
      facts: () => target.facts.get(),
      findFile: (kind, name) => this.findFile(play, task, kind, name),
      registered: r.registered,
      planHash: r.planHash,
      plannedResources: target.plannedResources,
    }, task, ctx, item);
  }

  private delegate(task: Task, r: HostRun): HostRun {
    const name = task.delegate_to!;
    let host = this.o.inventory.hosts.get(name);
    if (!host && (name === 'localhost' || name === '127.0.0.1')) {
      host = { name: 'localhost', address: '127.0.0.1', port: 22, user: 'root', become: false, connection: 'local', vars: {}, groups: [] };
    }
    if (!host) throw new ProvisionError(`delegate_to: no host "${name}" in the inventory`, task.place, { host: r.host.name, task: task.name });
    return this.hostRun(host);
  }

  private findFile(play: Play, task: Task, kind: 'templates' | 'files', name: string): string {
    if (name.startsWith('/')) return name;
    const dirs = [task.role && join(task.role.dir, kind), join(play.dir, kind), join(play.dir, '..', kind)].filter(Boolean) as string[];
    for (const d of dirs) if (existsSync(join(d, name))) return join(d, name);
    throw new ProvisionError(`${kind.slice(0, -1)} "${name}" not found (looked in ${dirs.join(', ')})`, task.place, { task: task.name });
  }

  private async flushHandlers(play: Play, runs: HostRun[]) {
    const todo = runs.filter((r) => r.active && r.notified.size);
    if (!todo.length) return;
    for (const h of play.handlers) {
      const targets = todo.filter((r) => r.active && (r.notified.has(h.name) || h.listen.some((l) => r.notified.has(l))));
      if (!targets.length) continue;
      this.o.reporter.task(`handler: ${h.name}`, formatPlace(h.place));
      await this.parallel(targets, async (r) => {
        await this.runTaskOnHost(play, { ...h, when: h.when }, r);
        if (r.active && this.o.mode === 'apply') {
          for (const n of [h.name, ...h.listen]) r.pending.delete(n);
          await savePending(r.prefetch, this.become(play, r), pendingFile(play), [...r.pending]);
        }
      });
    }
    for (const r of todo) if (r.active) r.notified.clear();
  }
}

class AbortPlay extends Error {}

