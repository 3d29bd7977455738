// systemd: daemon_reload, enabled, masked, state started/stopped/restarted/reloaded —
// templated instances (foo@ns.service) included.
import { shellQuote } from '../transport/transport.ts';
import { defineModule, noChange, type Change, type Planned, type Step } from './module.ts';

interface SystemdArgs {
  name?: string;
  state?: 'started' | 'stopped' | 'restarted' | 'reloaded';
  enabled?: boolean;
  masked?: boolean;
  daemon_reload?: boolean;
}

export interface UnitFacts {
  LoadState?: string;
  ActiveState?: string;
  UnitFileState?: string;
  NeedDaemonReload?: string;
}

export function planSystemd(a: SystemdArgs, f: UnitFacts): Planned {
  const changes: Change[] = [];
  const steps: Step[] = [];
  const unit = a.name ? shellQuote(a.name) : '';
  const resource = `systemd unit ${a.name}`;
  if (a.daemon_reload) {
    if (!a.name) {
      changes.push({ action: 'run', resource: 'systemd', detail: 'daemon-reload' });
      steps.push({ script: 'systemctl daemon-reload' });
    } else if (f.NeedDaemonReload === 'yes' || f.LoadState === 'not-found') {
      changes.push({ action: '~', resource, detail: 'daemon-reload (unit files changed on disk)' });
      steps.push({ script: 'systemctl daemon-reload' });
    }
  }
  if (!a.name) return { changes, steps };
  const masked = f.LoadState === 'masked' || f.UnitFileState === 'masked';
  if (a.masked === true && !masked) {
    changes.push({ action: '~', resource, detail: 'masked' });
    steps.push({ script: `systemctl mask ${unit}` });
  } else if (a.masked === false && masked) {
    changes.push({ action: '~', resource, detail: 'unmasked' });
    steps.push({ script: `systemctl unmask ${unit}` });
  }
  if (a.enabled !== undefined) {
    const enabled = ['enabled', 'enabled-runtime', 'static', 'alias', 'indirect', 'generated'].includes(f.UnitFileState ?? '') && f.UnitFileState !== 'indirect';
    if (a.enabled && !enabled) {
      changes.push({ action: '~', resource, detail: `enabled: ${f.UnitFileState || 'no'} → enabled` });
      steps.push({ script: `systemctl enable ${unit}` });
    } else if (!a.enabled && f.UnitFileState === 'enabled') {
      changes.push({ action: '~', resource, detail: 'enabled → disabled' });
      steps.push({ script: `systemctl disable ${unit}` });
    }
  }
  const active = f.ActiveState === 'active' || f.ActiveState === 'activating' || f.ActiveState === 'reloading';
  switch (a.state) {
    case 'started':
      if (!active) {
        changes.push({ action: '~', resource, detail: `state: ${f.ActiveState ?? 'unknown'} → started` });
        steps.push({ script: `systemctl start ${unit}` });
      }
      break;
    case 'stopped':
      if (active) {
        changes.push({ action: '~', resource, detail: `state: ${f.ActiveState} → stopped` });
        steps.push({ script: `systemctl stop ${unit}` });
      }
      break;
    case 'restarted':
      changes.push({ action: '~', resource, detail: active ? 'restart' : 'start (was not running)' });
      steps.push({ script: `systemctl restart ${unit}` });
      break;
    case 'reloaded':
      changes.push({ action: '~', resource, detail: active ? 'reload' : 'start (was not running)' });
      steps.push({ script: active ? `systemctl reload-or-restart ${unit}` : `systemctl start ${unit}` });
      break;
  }
  if (!changes.length) return noChange({ name: a.name, ...f });
  // What was asked and already holds (masked, enabled, started/stopped): counted on the unit's last change.
  const asked = [a.masked !== undefined, a.enabled !== undefined, a.state === 'started' || a.state === 'stopped'].filter(Boolean).length;
  const unitChanges = changes.filter((c) => c.resource === resource && !/^daemon-reload/.test(c.detail ?? ''));
  if (unitChanges.length) unitChanges[unitChanges.length - 1].unchanged = Math.max(0, asked - unitChanges.filter((c) => /^(masked|unmasked|enabled|state:)/.test(c.detail ?? '')).length);
  return { changes, steps, result: { name: a.name } };
}

export function parseShow(out: string): UnitFacts {
  const f: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) f[line.slice(0, i)] = line.slice(i + 1);
  }
  return f;
}

export default defineModule<SystemdArgs, UnitFacts>({
  name: 'systemd',
  batchFacts: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9:_.@\\\\-]+$' },
      state: { enum: ['started', 'stopped', 'restarted', 'reloaded'] },
      enabled: { type: 'boolean' },
      masked: { type: 'boolean' },
      daemon_reload: { type: 'boolean' },
    },
    anyOf: [{ required: ['name'] }, { required: ['daemon_reload'] }],
  },
  async facts(a, ctx) {
    if (!a.name) return {};
    const r = await ctx.exec(`systemctl show -p LoadState,ActiveState,UnitFileState,NeedDaemonReload ${shellQuote(a.name)}`);
    if (r.code !== 0) throw new Error(`systemctl show ${a.name} failed: ${r.stderr.trim()}`);
    return parseShow(r.stdout);
  },
  plan: planSystemd,
});
