// `orama monitor report [--env E] [--namespace NS] [--json]`: what real probes on the nodes say
// (src/namespace/monitor.ts). Exit 0 when everything is healthy, 1 otherwise.
import { parseArgs } from 'node:util';
import { ProvisionError } from '../provision/errors.ts';
import { openStore, stateFromArg } from '../store/open.ts';
import { formatMonitor, monitorReport } from '../namespace/monitor.ts';
import { environmentOf } from './orama-namespace.ts';
import { describeEnvironment } from './environment.ts';

const OPTIONS = {
  env: { type: 'string' },
  inventory: { type: 'string', short: 'i' },
  state: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  json: { type: 'boolean' },
  'accept-new-host-keys': { type: 'boolean' },
} as const;

export async function monitorCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    if (verb !== 'report') throw new ProvisionError(`orama monitor: unknown verb "${verb ?? ''}" (report)`);
    const { values } = parseArgs({ args: rest, options: OPTIONS, strict: true });
    const env = environmentOf(values);
    const store = await openStore(stateFromArg(env.state));
    try {
      const r = await monitorReport({ environment: describeEnvironment(env), inventory: env.inventory, state: env.state, store, namespace: values.namespace, acceptNewHostKeys: values['accept-new-host-keys'] });
      process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : formatMonitor(r));
      return r.healthy ? 0 : 1;
    } finally {
      await store.close();
    }
  } catch (e) {
    process.stderr.write(`orama: ${e instanceof ProvisionError ? e.describe() : (e as Error).message}\n`);
    return 1;
  }
}
