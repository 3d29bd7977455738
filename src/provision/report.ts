// What the operator sees: one line per event (or NDJSON with --json), the plan per host with
// Terraform's symbols and footer, and Ansible's PLAY RECAP. Every line passes the Redactor.
import type { Change } from './modules/module.ts';
import type { Redactor } from './secret.ts';

/** Plans show diffs up to this many lines unless --diff asks for all (a bundled program is not reviewable). */
export const DIFF_MAX_LINES = 150;

export type Status = 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable' | 'rescued' | 'ignored';

export interface HostStats {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export const emptyStats = (): HostStats => ({ ok: 0, changed: 0, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 });

export interface PlannedChange {
  host: string;
  task: string;
  place: string;
  change: Change;
}

export interface PlanTotals {
  add: number;
  change: number;
  destroy: number;
  run: number;
}

/** The version of the `plan` event and of `plan --json`'s shape (docs/engine.md); bumped on any incompatible change. */
export const PLAN_FORMAT_VERSION = '1.0';

/** "(content, mode 0644 → 0640; 2 unchanged attributes hidden)" — what a change line says beside its resource. */
export function describeChange(c: Change, sensitive = false): string {
  const parts = [sensitive && c.detail ? '(sensitive)' : c.detail, c.unchanged ? `${c.unchanged} unchanged attribute${c.unchanged === 1 ? '' : 's'} hidden` : undefined].filter(Boolean);
  return parts.length ? `  (${parts.join('; ')})` : '';
}

/**
 * One line per resource and host, as Terraform shows a resource once: a unit enabled and started
 * is `~ systemd unit x (enabled: disabled → enabled; state: inactive → started)`.
 */
export function groupChanges(changes: PlannedChange[]): PlannedChange[] {
  const out: PlannedChange[] = [];
  const at = new Map<string, PlannedChange>();
  const join = (a?: string, b?: string) => [...new Set([...(a ? a.split('; ') : []), ...(b ? [b] : [])])].join('; ') || undefined;
  for (const c of changes) {
    const key = `${c.host}\0${c.change.resource}`;
    const prev = at.get(key);
    // Changed again after it was changed or created: still one resource, created or changed.
    if (prev && c.change.action === '~' && (prev.change.action === '~' || prev.change.action === '+')) {
      prev.change = {
        ...prev.change,
        detail: join(prev.change.detail, c.change.detail),
        diff: prev.change.diff && c.change.diff && prev.change.diff !== c.change.diff ? `${prev.change.diff}\n${c.change.diff}` : prev.change.diff ?? c.change.diff,
        unchanged: Math.max(prev.change.unchanged ?? 0, c.change.unchanged ?? 0) || undefined,
      };
      continue;
    }
    const copy = { ...c, change: { ...c.change } };
    at.set(key, copy);
    out.push(copy);
  }
  return out;
}

export function totals(changes: Change[]): PlanTotals {
  const t = { add: 0, change: 0, destroy: 0, run: 0 };
  for (const c of changes) {
    if (c.action === '+') t.add++;
    else if (c.action === '~') t.change++;
    else if (c.action === '-') t.destroy++;
    else if (c.action === '-/+') (t.add++, t.destroy++);
    else t.run++;
  }
  return t;
}

const COLORS: Record<string, string> = { ok: '32', changed: '33', failed: '31', unreachable: '31', skipped: '36', rescued: '35', ignored: '35', '+': '32', '~': '33', '-': '31', '-/+': '35', run: '36' };

export class Reporter {
  private color: boolean;
  constructor(
    private redactor: Redactor,
    private opts: { json?: boolean; verbose?: number; diff?: boolean; out?: NodeJS.WritableStream } = {},
  ) {
    const out = (opts.out ?? process.stdout) as NodeJS.WriteStream;
    this.color = !opts.json && Boolean(out.isTTY) && !process.env.NO_COLOR;
  }

  private write(line: string) {
    (this.opts.out ?? process.stdout).write(this.redactor.scrub(line) + '\n');
  }

  private paint(key: string, text: string) {
    return this.color && COLORS[key] ? `\x1b[${COLORS[key]}m${text}\x1b[0m` : text;
  }

  event(type: string, data: Record<string, unknown>) {
    if (this.opts.json) this.write(JSON.stringify(this.redactor.scrubValue({ event: type, ...data })));
  }

  play(name: string, hosts: string[]) {
    this.event('play', { name, hosts });
    if (!this.opts.json) this.write(`\nPLAY [${name}] ${'*'.repeat(Math.max(3, 60 - name.length))}`);
  }

  task(name: string, place: string) {
    this.event('task', { name, place });
    if (!this.opts.json) this.write(`\nTASK [${name}]${this.opts.verbose ? `  (${place})` : ''}`);
  }

  result(host: string, status: Status, info: { changes?: Change[]; msg?: string; item?: unknown; noLog?: boolean; planned?: boolean }) {
    const changes = info.changes ?? [];
    this.event('result', { host, status, planned: info.planned ?? false, item: info.noLog ? undefined : info.item, msg: info.noLog && info.msg ? '(sensitive)' : info.msg, changes: info.noLog ? changes.map((c) => ({ action: c.action, resource: c.resource, detail: '(sensitive)' })) : changes });
    if (this.opts.json) return;
    const label = info.planned && status === 'changed' ? 'would change' : status;
    const item = info.item !== undefined && !info.noLog ? ` => (item=${typeof info.item === 'object' ? JSON.stringify(info.item) : info.item})` : '';
    let line = `${this.paint(status, `${label}: [${host}]`)}${item}`;
    if (info.msg) line += `: ${info.noLog ? '(sensitive)' : info.msg}`;
    this.write(line);
    for (const c of changes) {
      this.write(`    ${this.paint(c.action, c.action === 'run' ? '!' : c.action)} ${c.resource}${describeChange(c, info.noLog)}`);
      if (c.diff && (this.opts.diff || info.planned) && !info.noLog) {
        const lines = c.diff.split('\n');
        if (lines.length > DIFF_MAX_LINES && !this.opts.diff) this.write(`        (diff of ${lines.length} lines not shown; --diff shows it)`);
        else for (const l of lines) this.write(`        ${l}`);
      }
      else if (c.diff && info.noLog) this.write('        (diff hidden: no_log task)');
    }
  }

  warn(msg: string) {
    this.event('warning', { msg });
    if (!this.opts.json) this.write(`[WARNING]: ${msg}`);
  }

  timings(t: { startup: number; connect: number; facts: number; tasks: number; handlers: number; taskRuns: number; batches: number; batched: number; hits: number }) {
    this.event('timings', t);
    if (this.opts.json) return;
    const ms = (x: number) => `${Math.round(x)} ms`;
    this.write(`\nTIMINGS: start-up ${ms(t.startup)}, connect ${ms(t.connect)}, facts ${ms(t.facts)}, tasks ${ms(t.tasks)} (${t.taskRuns} tasks, ${t.taskRuns ? ms(t.tasks / t.taskRuns) : '-'} each), handlers ${ms(t.handlers)}; ${t.batches} fact batches answered ${t.batched} scripts, ${t.hits} used`);
  }

  recap(stats: Map<string, HostStats>) {
    this.event('recap', { hosts: Object.fromEntries(stats) });
    if (this.opts.json) return;
    this.write(`\nPLAY RECAP ${'*'.repeat(60)}`);
    const width = Math.max(...[...stats.keys()].map((h) => h.length), 4);
    for (const [h, s] of stats) {
      this.write(`${h.padEnd(width)} : ok=${s.ok} changed=${s.changed} unreachable=${s.unreachable} failed=${s.failed} skipped=${s.skipped} rescued=${s.rescued} ignored=${s.ignored}`);
    }
  }

  plan(planned: PlannedChange[], incomplete: string[] = []) {
    const changes = groupChanges(planned);
    const t = totals(changes.map((c) => c.change));
    // Terraform's flags: complete = every host was planned; applyable = complete and something to do.
    const complete = incomplete.length === 0;
    this.event('plan', { format_version: PLAN_FORMAT_VERSION, complete, applyable: complete && changes.length > 0, ...t, incomplete, changes: changes.map((c) => ({ host: c.host, task: c.task, ...c.change })) });
    if (this.opts.json) return;
    this.write('');
    if (incomplete.length) this.write(`Plan INCOMPLETE: ${incomplete.join(', ')} failed or unreachable; what they would change is unknown.`);
    if (!changes.length && !incomplete.length) {
      this.write('No changes. The hosts match the playbook.');
      return;
    }
    const byHost = new Map<string, PlannedChange[]>();
    for (const c of changes) byHost.set(c.host, [...(byHost.get(c.host) ?? []), c]);
    for (const [host, list] of byHost) {
      const ht = totals(list.map((c) => c.change));
      this.write(`${host}: ${ht.add} to add, ${ht.change} to change, ${ht.destroy} to destroy${ht.run ? `, ${ht.run} commands to run` : ''}`);
      for (const c of list) this.write(`  ${this.paint(c.change.action, c.change.action === 'run' ? '!' : c.change.action.padEnd(1))} ${c.change.resource}${describeChange(c.change)}`);
    }
    this.write(`\nPlan: ${t.add} to add, ${t.change} to change, ${t.destroy} to destroy.${t.run ? ` ${t.run} commands would run.` : ''}`);
  }
}
