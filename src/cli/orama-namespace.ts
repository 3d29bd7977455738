// `orama namespace enable|disable webrtc` and `orama namespace webrtc-status`.
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProvisionError } from '../provision/errors.ts';
import { openStore, stateFromArg } from '../store/open.ts';
import { checkNamespace, disableWebrtc, enableWebrtc, webrtcKnown } from '../namespace/webrtc.ts';
import { engineFlag } from '../namespace/decide.ts';
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
  force: { type: 'boolean' },
  'sfu-engine': { type: 'string' },
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

/** After a failed enable or disable: which nodes are done, which are not, and what finishes it. */
export function leftToDo(verb: string, ns: string, stats: Map<string, { failed: number; unreachable: number }>): string {
  const bad = [...stats].filter(([, s]) => s.failed || s.unreachable).map(([h, s]) => `${h} (${s.unreachable ? 'unreachable' : 'failed'})`);
  const done = [...stats].filter(([, s]) => !s.failed && !s.unreachable).map(([h]) => h);
  if (!bad.length) return '';
  const what = verb === 'disable'
    ? `the namespace's units, files and firewall set may remain on ${bad.length > 1 ? 'them' : 'it'}; the operator store keeps the namespace (its ports stay allocated)`
    : 'the namespace is not enabled there yet; the operator store keeps its secret and ports, so a re-run uses the same';
  return `\n${verb} of WebRTC for namespace "${ns}" did not finish on ${bad.join(', ')}: ${what}.${done.length ? ` Done on ${done.join(', ')}.` : ''}\nOnce ${bad.length > 1 ? 'they are' : 'it is'} back: orama namespace ${verb} webrtc --namespace ${ns}\n`;
}

export async function namespaceCommand(argv: string[]): Promise<number> {
  const [verb, what, ...rest] = argv;
  try {
    const args = verb === 'webrtc-status' ? [what, ...rest].filter((x) => x !== undefined) : rest;
    if ((verb === 'enable' || verb === 'disable') && what !== 'webrtc') throw new ProvisionError(`orama namespace ${verb}: only "webrtc" can be ${verb}d, got "${what ?? ''}"`);
    if (!['enable', 'disable', 'webrtc-status'].includes(verb)) throw new ProvisionError(`orama namespace: unknown verb "${verb ?? ''}" (enable webrtc, disable webrtc, webrtc-status)`);
    const { values } = parseArgs({ args, options: OPTIONS, strict: true });
    if (!values.namespace) throw new ProvisionError('--namespace NAME is required');
    // Before the store is opened (it would be created) or any node is asked.
    checkNamespace(values.namespace);
    if (values['sfu-engine'] !== undefined && verb !== 'enable') throw new ProvisionError(`--sfu-engine is for enable only (the engine of a namespace is chosen when it is enabled; webrtc-status shows it)`);
    engineFlag(values['sfu-engine']);
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
        sfuEngine: values['sfu-engine'],
      };
      if (verb === 'webrtc-status') {
        const s = await webrtcStatus(o);
        process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
        return s.healthy ? 0 : 1;
      }
      if (values.force && verb !== 'disable') throw new ProvisionError('--force is for disable only (remove what the nodes have of a namespace the operator store does not know)');
      if (verb === 'disable' && !values.force) {
        checkNamespace(values.namespace);
        if (!(await webrtcKnown(store, values.namespace))) {
          // Nothing ran on any node: no state file written, no user looked up.
          const msg = `nothing to disable: namespace "${values.namespace}" has no WebRTC in the operator store of environment "${env.name}" (${env.state}); no node was touched. If a node still runs its units (orama inspector reports them), --force removes them.`;
          process.stdout.write(values.json ? JSON.stringify({ namespace: values.namespace, changed: false, reason: 'not enabled in the operator store' }) + '\n' : `${msg}\n`);
          return 0;
        }
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
      if (r.failed) {
        if (!values.json && !values.plan) process.stderr.write(leftToDo(verb, values.namespace, r.stats));
        return 1;
      }
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
