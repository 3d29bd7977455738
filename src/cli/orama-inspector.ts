// `orama inspector [--env E] [--namespace NS] [--json]`: cross-node checks with a severity and a
// fix each (src/namespace/inspector.ts). Exit 1 on any error finding.
import { parseArgs } from 'node:util';
import { ProvisionError } from '../provision/errors.ts';
import { openStore, stateFromArg } from '../store/open.ts';
import { formatInspector, inspect } from '../namespace/inspector.ts';
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

export async function inspectorCommand(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
    const env = environmentOf(values);
    const store = await openStore(stateFromArg(env.state));
    try {
      const r = await inspect({ environment: describeEnvironment(env), inventory: env.inventory, store, namespace: values.namespace, acceptNewHostKeys: values['accept-new-host-keys'] });
      process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : formatInspector(r));
      return r.ok ? 0 : 1;
    } finally {
      await store.close();
    }
  } catch (e) {
    process.stderr.write(`orama: ${e instanceof ProvisionError ? e.describe() : (e as Error).message}\n`);
    return 1;
  }
}
