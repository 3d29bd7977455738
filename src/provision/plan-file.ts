// `plan --out plan.json` / `apply plan.json`: a saved plan is applied only if re-planning now
// yields exactly the same fingerprints (per host); otherwise the world drifted and we refuse.
import { readFileSync, writeFileSync } from 'node:fs';
import { ProvisionError } from './errors.ts';
import type { PlannedChange } from './report.ts';
import { groupChanges, totals } from './report.ts';
import type { Redactor } from './secret.ts';

export const PLAN_FORMAT = 1;

export interface PlanFile {
  format: number;
  created: string;
  playbook: string;
  inventory: string;
  options: { limit?: string; tags?: string[]; skipTags?: string[]; extra: string[]; forks?: number };
  fingerprints: Record<string, string>;
  totals: ReturnType<typeof totals>;
  changes: { host: string; task: string; place: string; action: string; resource: string; detail?: string; diff?: string }[];
}

export function writePlanFile(path: string, p: Omit<PlanFile, 'format' | 'created' | 'changes' | 'totals'>, changes: PlannedChange[], redactor: Redactor) {
  const file: PlanFile = {
    format: PLAN_FORMAT,
    created: new Date().toISOString(),
    ...p,
    totals: totals(groupChanges(changes).map((c) => c.change)),
    changes: changes.map((c) => ({ host: c.host, task: c.task, place: c.place, ...c.change })),
  };
  writeFileSync(path, redactor.scrub(JSON.stringify(redactor.scrubValue(file), null, 2)) + '\n', { mode: 0o600 });
}

export function readPlanFile(path: string): PlanFile {
  let v: PlanFile;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ProvisionError(`not a readable plan file: ${(e as Error).message}`, { file: path });
  }
  if (v?.format !== PLAN_FORMAT || !v.fingerprints || !v.playbook) throw new ProvisionError(`not a plan file of format ${PLAN_FORMAT} (made by \`orama-provision plan --out\`)`, { file: path });
  return v;
}

/** Hosts whose plan today differs from the saved one. */
export function staleHosts(saved: Record<string, string>, now: Record<string, string>): string[] {
  const hosts = new Set([...Object.keys(saved), ...Object.keys(now)]);
  return [...hosts].filter((h) => saved[h] !== now[h]).sort();
}
