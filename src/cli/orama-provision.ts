// `orama-provision` — the engine's command line: apply / plan playbooks, and the test cluster.
import { ProvisionError } from '../provision/errors.ts';
import { apply, applyApproved, applyPlanFile, plan } from '../provision/engine.ts';
import { approve, interactive } from './approve.ts';
import { parseExtraVars, parseProvisionArgs } from './provision-args.ts';

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'apply':
      case 'plan':
        return await provision(verb, rest);
      case 'front-cert':
        return frontCert(rest);
      case 'cluster': {
        const { clusterCommand } = await import('../cluster/command.ts');
        return await clusterCommand(rest);
      }
      case undefined:
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        return verb ? 0 : 1;
      default:
        process.stderr.write(`orama-provision: unknown command "${verb}"\n${USAGE}`);
        return 1;
    }
  } catch (e) {
    process.stderr.write(`orama-provision: ${e instanceof ProvisionError ? e.describe() : (e as Error).message}\n`);
    return 1;
  }
}

/** A CA (kept) and a certificate for *.DOMAIN for the HTTPS front of a cluster without a real one. */
async function frontCert(argv: string[]): Promise<number> {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({ args: argv, options: { domain: { type: 'string' }, dir: { type: 'string' } }, strict: true });
  if (!values.domain || !values.dir) throw new ProvisionError('front-cert needs --domain DOMAIN (the base domain: the certificate names *.DOMAIN) and --dir DIR (where the CA and the certificate are kept)');
  const { ensureFrontTls } = await import('../secret/ca.ts');
  const f = ensureFrontTls(values.dir, values.domain);
  process.stdout.write(`CA ${f.ca} (what browsers trust)\ncertificate ${f.cert} (*.${values.domain}, ${values.domain})\nin the inventory, for the group cluster (paths absolute or relative to the inventory file):\n  front_tls_cert: ${f.cert}\n  front_tls_key: ${f.key}\n`);
  return 0;
}

async function provision(verb: 'apply' | 'plan', argv: string[]): Promise<number> {
  const a = parseProvisionArgs(argv);
  const common = { limit: a.limit, tags: a.tags, skipTags: a.skipTags, forks: a.forks, diff: a.diff, json: a.json, verbose: a.verbose, acceptNewHostKeys: a.acceptNewHostKeys, batch: a.batch, timings: a.timings };
  if (verb === 'apply' && a.target.endsWith('.json')) {
    const r = await applyPlanFile(a.target, { ...common, parseExtra: parseExtraVars });
    return r.failed ? 1 : 0;
  }
  if (!a.inventory) throw new ProvisionError('-i INVENTORY is required');
  const o = { ...common, playbook: a.target, inventory: a.inventory, extraVars: parseExtraVars(a.extra), extraArgs: a.extra };
  if (verb === 'plan') {
    const r = await plan({ ...o, planOut: a.out });
    if (r.failed) return 1;
    return r.changes.length ? 2 : 0;
  }
  if (!a.yes && !a.json && interactive()) {
    // A person at a terminal: the plan first, then their yes, then exactly that plan.
    const planned = await plan(o);
    if (planned.failed) return 1;
    if (!planned.changes.length) return 0;
    if (!(await approve(`on ${Object.keys(planned.fingerprints).length} host(s)`))) {
      process.stderr.write('\nApply cancelled: nothing was changed.\n');
      return 1;
    }
    const r = await applyApproved(o, planned.fingerprints);
    return r.failed ? 1 : 0;
  }
  const r = await apply(o);
  return r.failed ? 1 : 0;
}

const USAGE = `usage:
  orama-provision plan  PLAYBOOK -i INVENTORY [--out plan.json] [options]   exit 0 no changes, 2 changes, 1 error
  orama-provision apply PLAYBOOK -i INVENTORY [options]                     exit 0 ok, 1 failed/unreachable hosts
  orama-provision apply plan.json                                           applies exactly that plan; refuses a stale one
  orama-provision cluster up|down [--wipe]|status|ssh N [CMD]|stop N|start N|poweroff N|reboot N
  orama-provision front-cert --domain DOMAIN --dir DIR                      a CA (made once, kept) and a
                            certificate for *.DOMAIN for the HTTPS front of a cluster without a real one

options:
  -i, --inventory FILE      YAML inventory (group_vars/ and host_vars/ beside it are read)
  -l, --limit PATTERN       host pattern: names, groups, all, a:b, a:&b, a:!b
  -t, --tags T1,T2          only tasks with these tags;  --skip-tags T1,T2
  -e, --extra-vars K=V      highest-precedence variable (YAML scalar); also -e @vars.yml, -e '{"json":1}'
  -f, --forks N             hosts worked on in parallel (default 10)
      --diff                show file diffs on apply (plans always show them)
      --json                NDJSON events instead of text
  -o, --out FILE            (plan) save the plan for a later \`apply FILE\`
      --accept-new-host-keys  trust hosts not yet in known_hosts (a CHANGED key is always an error)
      --no-batch            ask each task's facts in its own round trip (default: the coming
                            tasks' facts in one batch per host; the plan is the same either way)
      --timings             print where the time went: start-up, connect, facts, tasks, batches
  -y, --yes                 (apply) no approval question; it is asked only when stdin and stdout
                            are a terminal: the plan is shown, only "yes" applies exactly it
  -v                        more detail (task source positions)
`;
