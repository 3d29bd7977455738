// What `orama monitor report` and `orama inspector` share: the environment flags, the operator
// store opened and closed, text or --json, exit 0 only when the report says all is well.
import { parseArgs } from 'node:util';
import { ProvisionError } from '../provision/errors.ts';
import type { Store } from '../store/store.ts';
import { openStore, stateFromArg } from '../store/open.ts';
import { describeEnvironment, type Environment } from './environment.ts';
import { environmentOf } from './orama-namespace.ts';
import { checkNamespace } from '../namespace/webrtc.ts';

const OPTIONS = {
  env: { type: 'string' },
  inventory: { type: 'string', short: 'i' },
  state: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  json: { type: 'boolean' },
  'accept-new-host-keys': { type: 'boolean' },
} as const;

export interface ReportInput {
  environment: string;
  env: Environment;
  store: Store;
  namespace?: string;
  acceptNewHostKeys?: boolean;
}

export async function reportCommand<R>(argv: string[], make: (i: ReportInput) => Promise<R>, format: (r: R) => string, good: (r: R) => boolean): Promise<number> {
  try {
    const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
    if (values.namespace !== undefined) checkNamespace(values.namespace);
    const env = environmentOf(values);
    const store = await openStore(stateFromArg(env.state));
    try {
      const r = await make({ environment: describeEnvironment(env), env, store, namespace: values.namespace, acceptNewHostKeys: values['accept-new-host-keys'] });
      process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : format(r));
      return good(r) ? 0 : 1;
    } finally {
      await store.close();
    }
  } catch (e) {
    process.stderr.write(`orama: ${e instanceof ProvisionError ? e.describe() : (e as Error).message}\n`);
    return 1;
  }
}
