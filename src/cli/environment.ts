// Named environments (`--env NAME`): which inventory, which operator store and which base domain
// every `orama` command uses, kept in inventory/environments/NAME.yml so an operator types
// `--env devnet` instead of repeating -i, --state and --base-domain. `local` (the test cluster)
// is the default. Precedence: a flag, then the --env file, then ORAMA_INVENTORY / ORAMA_STATE /
// ORAMA_BASE_DOMAIN, then the `local` file.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProvisionError } from '../provision/errors.ts';
import { loadYaml, placeOf } from '../provision/source.ts';
import { stateProblem } from '../store/open.ts';
import { baseDomainProblem } from '../webrtc/names.ts';

// Two levels up, from src/cli/ and from the bundled dist/cli/ alike.
const ENV_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'inventory', 'environments');
export const DEFAULT_ENV = 'local';

export interface Environment {
  name: string;
  inventory: string;
  /** The operator's store: a SQLite path or rqlite URL(s), as --state takes. */
  state: string;
  baseDomain: string;
  /** Where a value did not come from the environment's file ("inventory from -i"). */
  overrides?: string[];
}

/** "local", or "local (inventory from ORAMA_INVENTORY)": what a report says it ran against. */
export const describeEnvironment = (e: Environment) => (e.overrides?.length ? `${e.name} (${e.overrides.join(', ')})` : e.name);

const KEYS = ['inventory', 'state', 'base_domain'];

export function knownEnvironments(dir = ENV_DIR): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => f.replace(/\.ya?ml$/, '')).sort() : [];
}

export function loadEnvironment(name: string, dir = ENV_DIR): Environment {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new ProvisionError(`--env "${name}": an environment name is lowercase letters, digits and dashes (known: ${knownEnvironments(dir).join(', ') || 'none'})`);
  const file = [join(dir, `${name}.yml`), join(dir, `${name}.yaml`)].find(existsSync);
  if (!file) throw new ProvisionError(`--env "${name}": no such environment (known: ${knownEnvironments(dir).join(', ') || 'none'}; each is a file in ${dir})`);
  const v = loadYaml(file) as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ProvisionError('an environment file is a mapping of inventory, state, base_domain', { file });
  for (const k of Object.keys(v)) if (!KEYS.includes(k)) throw new ProvisionError(`unknown key "${k}" (an environment has ${KEYS.join(', ')})`, placeOf(v, k) ?? { file }, { key: k });
  for (const k of KEYS) if (typeof v[k] !== 'string' || !(v[k] as string).trim()) throw new ProvisionError(`"${k}" must be a non-empty string`, placeOf(v, k) ?? { file }, { key: k });
  const rel = (p: string) => (isAbsolute(p) ? p : resolve(dirname(file), p));
  const state = v.state as string;
  const problem = stateProblem(state);
  if (problem) throw new ProvisionError(`"state" ${JSON.stringify(state)}: ${problem}`, placeOf(v, 'state') ?? { file }, { key: 'state' });
  const domain = baseDomainProblem(v.base_domain as string);
  if (domain) throw new ProvisionError(`"base_domain" ${JSON.stringify(v.base_domain)}: not a DNS name: ${domain}`, placeOf(v, 'base_domain') ?? { file }, { key: 'base_domain' });
  return { name, inventory: rel(v.inventory as string), state: /^https?:\/\//i.test(state) ? state : rel(state), baseDomain: v.base_domain as string };
}

/** What a command uses, from its flags and --env (see the precedence above). */
export function resolveEnvironment(flags: { env?: string; inventory?: string; state?: string; baseDomain?: string }, dir = ENV_DIR): Environment {
  const chosen = flags.env !== undefined ? loadEnvironment(flags.env, dir) : undefined;
  const fallback = chosen ?? (knownEnvironments(dir).includes(DEFAULT_ENV) ? loadEnvironment(DEFAULT_ENV, dir) : undefined);
  const overrides: string[] = [];
  /** The value, and what it came from: the flag, the variable (or the --env or local file, checked when loaded). */
  const pick = (flag: string | undefined, envVar: string, fromFile: string | undefined, what: string): [string, string] => {
    const v = flag ?? (chosen ? fromFile : undefined) ?? process.env[envVar] ?? fromFile;
    if (!v) throw new ProvisionError(`no ${what}: pass it, set ${envVar}, or choose an environment with --env (known: ${knownEnvironments(dir).join(', ') || 'none'})`);
    if (v !== fromFile) overrides.push(`${what.split(' ')[0]} from ${flag !== undefined ? 'the command line' : envVar}`);
    return [v, flag === undefined && v !== fromFile ? envVar : /\((.+)\)/.exec(what)![1]];
  };
  const [inventory] = pick(flags.inventory, 'ORAMA_INVENTORY', fallback?.inventory, 'inventory (-i)');
  const [state] = pick(flags.state, 'ORAMA_STATE', fallback?.state, 'state (--state)');
  const [baseDomain, domainFrom] = pick(flags.baseDomain, 'ORAMA_BASE_DOMAIN', fallback?.baseDomain, 'base domain (--base-domain)');
  // Before anything else happens (the store opened, a node asked): every namespace's names are made from it.
  const problem = baseDomainProblem(baseDomain);
  if (problem) throw new ProvisionError(`${domainFrom} ${JSON.stringify(baseDomain)}: not a DNS name: ${problem}`);
  return { name: chosen?.name ?? DEFAULT_ENV, overrides, inventory, state, baseDomain };
}
