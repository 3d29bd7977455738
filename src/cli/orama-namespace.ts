// `orama namespace enable|disable webrtc` and `orama namespace webrtc-status`.
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProvisionError } from '../provision/errors.ts';
import { openStore, stateFromArg } from '../store/open.ts';
import { disableWebrtc, enableWebrtc } from '../namespace/webrtc.ts';
import { webrtcStatus, formatStatus } from '../namespace/status.ts';
import { approve, interactive } from './approve.ts';
import { resolveEnvironment, type Environment } from './environment.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const OPTIONS = {
  env: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  inventory: { type: 'string', short: 'i' },
  state: { type: 'string' },
  'base-domain': { type: 'string' },
  plan: { type: 'boolean' },
  json: { type: 'boolean' },
  'accept-new-host-keys': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  'no-batch': { type: 'boolean' },
} as const;

/** The environment of a command (environment.ts), its inventory checked to exist. */
export function environmentOf(flags: { env?: string; inventory?: string; state?: string; 'base-domain'?: string }): Environment {
  const e = resolveEnvironment({ env: flags.env, inventory: flags.inventory, state: flags.state, baseDomain: flags['base-domain'] });
  if (!existsSync(e.inventory)) {
    const hint = e.inventory === join(root, 'inventory', 'test-cluster.yml') ? ' (it appears after `orama-provision cluster up`)' : '';
    throw new ProvisionError(`inventory ${e.inventory} of environment "${e.name}" does not exist${hint}`);
  }
  return e;
}

export async function namespaceCommand(argv: string[]): Promise<number> {
  const [verb, what, ...rest] = argv;
  try {
    const args = verb === 'webrtc-status' ? [what, ...rest].filter((x) => x !== undefined) : rest;
    if ((verb === 'enable' || verb === 'disable') && what !== 'webrtc') throw new ProvisionError(`orama namespace ${verb}: only "webrtc" can be ${verb}d, got "${what ?? ''}"`);
    if (!['enable', 'disable', 'webrtc-status'].includes(verb)) throw new ProvisionError(`orama namespace: unknown verb "${verb ?? ''}" (enable webrtc, disable webrtc, webrtc-status)`);
    const { values } = parseArgs({ args, options: OPTIONS, strict: true });
    if (!values.namespace) throw new ProvisionError('--namespace NAME is required');
    const env = environmentOf(values);
    const store = await openStore(stateFromArg(env.state), { migrate: true });
    try {
      const o = {
        namespace: values.namespace,
        inventory: env.inventory,
        store,
        baseDomain: env.baseDomain,
        plan: values.plan,
        json: values.json,
        acceptNewHostKeys: values['accept-new-host-keys'],
        batch: !values['no-batch'],
      };
      if (verb === 'webrtc-status') {
        const s = await webrtcStatus(o);
        process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
        return s.healthy ? 0 : 1;
      }
      const change = verb === 'enable' ? enableWebrtc : disableWebrtc;
      if (!values.plan && !values.yes && !values.json && interactive()) {
        // A person at a terminal: the plan (it stores nothing), their yes, then the change.
        const planned = await change({ ...o, plan: true });
        if (planned.failed) return 1;
        if (planned.changes.length && !(await approve(`for namespace "${values.namespace}"`))) {
          process.stderr.write('\nCancelled: nothing was changed.\n');
          return 1;
        }
      }
      const r = await change(o);
      if (r.failed) return 1;
      if (values.plan) return r.changes.length ? 2 : 0;
      if (!values.json) process.stdout.write(`\nWebRTC ${verb}d for namespace "${values.namespace}". Status: orama namespace webrtc-status --namespace ${values.namespace}\n`);
      return 0;
    } finally {
      await store.close();
    }
  } catch (e) {
    process.stderr.write(`orama: ${e instanceof ProvisionError ? e.describe() : (e as Error).message}\n`);
    return 1;
  }
}
