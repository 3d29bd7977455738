// `orama token …` and `orama apikey …`: the operator's credentials for a namespace's WebRTC
// gateway. State: --state PATH (SQLite file) or --state http://rqlite:4001[,…]; default
// ${ORAMA_STATE:-/var/lib/orama/state.db}. A namespace's JWT key is created on first use and kept
// in the store (namespace_jwt_keys); `token key` writes the gateway's jwt.key_file from it.
// The only secret ever printed is the one asked for (the token, the new API key) on stdout, or
// into --out with mode 0600. API keys live in the operator's store; when the namespace has WebRTC,
// create/revoke also copy the namespace's key records (hashes, never keys) into the cluster's
// rqlite over SSH (playbooks/webrtc-apikeys.yml; its output goes to stderr), so the nodes'
// gateways accept and refuse them; `apikey sync` does only that.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openStore, stateFromArg } from '../store/open.ts';
import { StoreError, type JwtAlg, type Store } from '../store/store.ts';
import { generateJwtKey, mintToken, verificationKeyText } from '../webrtc/tokens.ts';
import { syncApiKeys } from '../namespace/webrtc.ts';
import { environmentOf } from './orama-namespace.ts';
import { resolveEnvironment } from './environment.ts';
import { ProvisionError } from '../provision/errors.ts';
import { NAMESPACE_RE } from '../webrtc/names.ts';

const USAGE = `usage:
  orama token mint    --namespace NS --subject SUB [--owner] [--ttl SECONDS] [--alg HS256|ES256|EdDSA] [--out FILE] [--state PATH|URL]
  orama token key     --namespace NS --out FILE [--alg HS256|ES256|EdDSA] [--state PATH|URL]
  orama apikey create --namespace NS --subject SUB [--owner] [--out FILE] [--state PATH|URL] [-i INVENTORY] [--plan]
  orama apikey revoke --namespace NS --id KEY_ID [--state PATH|URL] [-i INVENTORY] [--plan]
  orama apikey sync   --namespace NS [--state PATH|URL] [-i INVENTORY] [--plan]
  orama apikey list   --namespace NS [--state PATH|URL]
`;

const OPTIONS = {
  namespace: { type: 'string' },
  subject: { type: 'string' },
  owner: { type: 'boolean' },
  ttl: { type: 'string' },
  alg: { type: 'string' },
  out: { type: 'string' },
  state: { type: 'string' },
  env: { type: 'string' },
  id: { type: 'string' },
  inventory: { type: 'string', short: 'i' },
  plan: { type: 'boolean' },
  'accept-new-host-keys': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

function need(v: string | undefined, flag: string): string {
  if (v === undefined || v === '') throw new UsageError(`--${flag} is required`);
  return v;
}

function emit(secret: string, out: string | undefined): void {
  if (out) writeFileSync(out, secret + '\n', { mode: 0o600 });
  else process.stdout.write(secret + '\n');
}

async function namespaceKey(store: Store, namespace: string, alg: string | undefined) {
  if (alg !== undefined && !['HS256', 'ES256', 'EdDSA'].includes(alg)) throw new UsageError(`--alg must be HS256, ES256 or EdDSA, got "${alg}"`);
  const existing = await store.getJwtKey(namespace);
  if (existing) {
    if (alg && existing.alg !== alg) throw new UsageError(`namespace "${namespace}" already has a ${existing.alg} key (kid ${existing.kid}); --alg ${alg} cannot change it`);
    return existing;
  }
  return store.putJwtKeyIfAbsent(generateJwtKey(namespace, (alg as JwtAlg | undefined) ?? 'HS256'));
}

type Values = { env?: string; inventory?: string; state?: string; plan?: boolean; 'accept-new-host-keys'?: boolean };

/**
 * Copies the namespace's API key records to its cluster when the namespace has WebRTC there
 * (`always`: say so when it has not). 0 when done or nothing to do; 1 when the cluster could not
 * be updated (the operator's store keeps the change; `apikey sync` finishes it).
 */
async function toCluster(store: Store, namespace: string, values: Values, always = false): Promise<number> {
  const cfg = await store.getWebrtcConfig(namespace);
  if (!cfg?.enabled) {
    process.stderr.write(`${always ? 'orama apikey sync: ' : ''}namespace "${namespace}" has no WebRTC on a cluster: ${always ? 'nothing to sync' : 'the key is kept in the operator store only (enable copies it to the cluster)'}\n`);
    return always ? 1 : 0;
  }
  const notUpdated = (why: string) => {
    process.stderr.write(`orama apikey: ${why}the cluster's database was NOT updated${values.plan ? '' : '; the operator store was'}. Re-run \`orama apikey sync --namespace ${namespace}\` when the nodes are reachable.\n`);
    return 1;
  };
  let r;
  try {
    r = await syncApiKeys({
      namespace, store, inventory: environmentOf(values).inventory, baseDomain: '', plan: values.plan,
      out: process.stderr, acceptNewHostKeys: values['accept-new-host-keys'],
    });
  } catch (e) {
    return notUpdated(`${e instanceof ProvisionError ? e.describe() : (e as Error).message}\n`);
  }
  if (r.failed) return notUpdated('');
  if (!values.plan) process.stderr.write(`API keys of namespace "${namespace}" copied to the cluster database\n`);
  return values.plan && r.changes.length ? 2 : 0;
}

export async function authCommand(noun: 'token' | 'apikey', argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  let values;
  try {
    ({ values } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    process.stderr.write(`orama ${noun}: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help || verb === undefined || verb === '-h' || verb === '--help') {
    process.stdout.write(USAGE);
    return verb === undefined ? 2 : 0;
  }
  let store: Store | undefined;
  try {
    const namespace = need(values.namespace, 'namespace');
    if (!NAMESPACE_RE.test(namespace)) throw new UsageError(`--namespace: invalid namespace name "${namespace}"`);
    // The store only: token and apikey list work without an inventory (no cluster needed).
    const open = async () => (store = await openStore(stateFromArg(values.state ?? (values.env ? resolveEnvironment({ env: values.env }).state : undefined))));
    switch (`${noun} ${verb}`) {
      case 'token mint': {
        const subject = need(values.subject, 'subject');
        const ttl = values.ttl === undefined ? 3600 : Number(values.ttl);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 31 * 86400) throw new UsageError(`--ttl must be whole seconds between 1 and ${31 * 86400}, got "${values.ttl}"`);
        const key = await namespaceKey(await open(), namespace, values.alg);
        emit(await mintToken(key, { subject, owner: values.owner ?? false, ttl }), values.out);
        process.stderr.write(`minted a ${key.alg} token for subject "${subject}" of namespace "${namespace}"${values.owner ? ' (owner)' : ''}, valid ${ttl} s\n`);
        return 0;
      }
      case 'token key': {
        const out = need(values.out, 'out');
        const key = await namespaceKey(await open(), namespace, values.alg);
        writeFileSync(out, verificationKeyText(key) + '\n', { mode: 0o600 });
        process.stderr.write(`wrote the ${key.alg} verification key of namespace "${namespace}" (kid ${key.kid}) to ${out}; gateway.json: "jwt": {"alg": "${key.alg}", "key_file": "${out}"}\n`);
        return 0;
      }
      case 'apikey create': {
        const subject = need(values.subject, 'subject');
        const st = await open();
        if (values.plan) {
          process.stderr.write(`plan: would create an API key for subject "${subject}" of namespace "${namespace}"${values.owner ? ' (owner)' : ''}\n`);
          return (await toCluster(st, namespace, values)) === 1 ? 1 : 2; // a change is pending
        }
        const { key, info } = await st.createApiKey({ namespace, subject, owner: values.owner ?? false });
        emit(key.reveal(), values.out);
        process.stderr.write(`created API key ${info.id} for subject "${subject}" of namespace "${namespace}"${info.owner ? ' (owner)' : ''}\n`);
        return await toCluster(st, namespace, values);
      }
      case 'apikey revoke': {
        const id = need(values.id, 'id');
        const st = await open();
        const active = (await st.listApiKeys(namespace)).find((k) => k.id === id && k.revokedAt === null);
        if (!active) {
          process.stderr.write(`orama apikey revoke: no active API key "${id}" in namespace "${namespace}"\n`);
          return 1;
        }
        if (values.plan) {
          process.stderr.write(`plan: would revoke API key ${id} (subject "${active.subject}") of namespace "${namespace}"\n`);
          return (await toCluster(st, namespace, values)) === 1 ? 1 : 2; // a change is pending
        }
        await st.revokeApiKey(namespace, id);
        process.stderr.write(`revoked API key ${id} of namespace "${namespace}"\n`);
        return await toCluster(st, namespace, values);
      }
      case 'apikey sync':
        return await toCluster(await open(), namespace, values, true);
      case 'apikey list': {
        for (const k of await (await open()).listApiKeys(namespace)) {
          process.stdout.write(`${k.id}\t${k.subject}\t${k.owner ? 'owner' : 'member'}\t${k.revokedAt ? `revoked ${new Date(k.revokedAt * 1000).toISOString()}` : 'active'}\n`);
        }
        return 0;
      }
      default:
        throw new UsageError(`unknown command "orama ${noun} ${verb}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`orama ${noun}: ${e.message}\n${USAGE}`);
      return 2;
    }
    if (e instanceof StoreError) {
      process.stderr.write(`orama ${noun}: ${e.message}\n`);
      return 1;
    }
    // An unknown --env, an unreadable inventory: said plainly, never a stack trace.
    if (e instanceof ProvisionError) {
      process.stderr.write(`orama ${noun}: ${e.describe()}\n`);
      return 1;
    }
    throw e;
  } finally {
    await (store as Store | undefined)?.close();
  }
}
