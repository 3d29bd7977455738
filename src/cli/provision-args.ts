// Command-line options of `orama-provision apply|plan`, and `-e` extra variables.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { ProvisionError } from '../provision/errors.ts';
import { customTags, loadYaml } from '../provision/source.ts';

export interface ProvisionArgs {
  target: string;
  inventory?: string;
  limit?: string;
  tags?: string[];
  skipTags?: string[];
  extra: string[];
  forks: number;
  diff: boolean;
  json: boolean;
  out?: string;
  verbose: number;
  acceptNewHostKeys: boolean;
  batch: boolean;
  timings: boolean;
  yes: boolean;
}

export function parseProvisionArgs(argv: string[]): ProvisionArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      inventory: { type: 'string', short: 'i' },
      limit: { type: 'string', short: 'l' },
      tags: { type: 'string', short: 't' },
      'skip-tags': { type: 'string' },
      'extra-vars': { type: 'string', short: 'e', multiple: true },
      forks: { type: 'string', short: 'f' },
      diff: { type: 'boolean' },
      json: { type: 'boolean' },
      out: { type: 'string', short: 'o' },
      verbose: { type: 'boolean', short: 'v', multiple: true },
      'accept-new-host-keys': { type: 'boolean' },
      'no-batch': { type: 'boolean' },
      timings: { type: 'boolean' },
      yes: { type: 'boolean', short: 'y' },
    },
  });
  if (positionals.length !== 1) throw new ProvisionError(`expected exactly one PLAYBOOK (or plan file), got ${positionals.length ? positionals.join(' ') : 'none'}`);
  const forks = values.forks === undefined ? 10 : Number(values.forks);
  if (!Number.isInteger(forks) || forks < 1) throw new ProvisionError(`--forks must be a positive integer, got "${values.forks}"`);
  const csv = (s?: string) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);
  return {
    target: positionals[0],
    inventory: values.inventory,
    limit: values.limit,
    tags: csv(values.tags),
    skipTags: csv(values['skip-tags']),
    extra: (values['extra-vars'] ?? []).map((e) => (e.startsWith('@') ? '@' + resolve(e.slice(1)) : e)),
    forks,
    diff: values.diff ?? false,
    json: values.json ?? false,
    out: values.out,
    verbose: values.verbose?.length ?? 0,
    acceptNewHostKeys: values['accept-new-host-keys'] ?? false,
    batch: !values['no-batch'],
    timings: values.timings ?? false,
    yes: values.yes ?? false,
  };
}

/** `-e k=v` (value parsed as a YAML scalar: 3478 is a number), `-e @file.yml`, `-e '{json}'`. */
export function parseExtraVars(list: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of list) {
    if (e.startsWith('@')) {
      const v = loadYaml(e.slice(1));
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ProvisionError('extra vars file must be a mapping', { file: e.slice(1) });
      Object.assign(out, v);
    } else if (e.trim().startsWith('{')) {
      try {
        Object.assign(out, JSON.parse(e));
      } catch (err) {
        throw new ProvisionError(`-e: invalid JSON: ${(err as Error).message}`);
      }
    } else {
      const i = e.indexOf('=');
      if (i < 1) throw new ProvisionError(`-e ${shown(e)}: expected key=value, @file.yml or a JSON object`);
      out[e.slice(0, i)] = extraValue(e, e.slice(0, i), e.slice(i + 1));
    }
  }
  return out;
}

/** An -e argument in an error: quoted, and cut at 40 characters. */
const shown = (e: string) => JSON.stringify(e.length > 40 ? e.slice(0, 40) + '…' : e);

/** The value of `-e key=value`, a YAML scalar (3478 is a number); broken YAML names -e and the key. */
function extraValue(arg: string, key: string, text: string): unknown {
  try {
    // `-e 'db_password=!secret_file /etc/x'` reads a secret without putting it on the command line.
    return YAML.parse(text || '""', { prettyErrors: false, customTags });
  } catch (err) {
    if (!(err instanceof YAML.YAMLError)) throw err;
    const before = text.slice(0, err.pos[0]).split('\n');
    const col = before.at(-1)!.length + 1;
    const at = before.length > 1 ? `line ${before.length}, column ${col}` : `column ${col}`;
    throw new ProvisionError(`-e ${shown(arg)}: the value of ${key} is not valid YAML: ${err.message.split('\n')[0]} (${at})`);
  }
}
