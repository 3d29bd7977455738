// `orama token` and `orama apikey` against a temp SQLite state file, through bin/orama.js.
import t from 'tap';
import { mkdtempSync, rmSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { createDecoder } from 'fast-jwt';
const decodeJwt = createDecoder();
import { loadVerificationKey, verifyToken } from '../../src/webrtc/tokens.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { Secret } from '../../src/secret/secret.ts';

const dir = mkdtempSync(join(tmpdir(), 'orama-auth-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const state = join(dir, 'state.db');

const orama = (args: string[], env: Record<string, string> = {}) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
  execFile(process.execPath, ['bin/orama.js', ...args], { timeout: 30_000, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
    resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }));
});

t.test('token mint + token key: the gateway verifies what the CLI mints', async (t) => {
  const r = await orama(['token', 'mint', '--namespace', 'ns-a', '--subject', 'alice', '--owner', '--ttl', '120', '--state', state]);
  t.equal(r.code, 0, r.stderr);
  const token = r.stdout.trim();
  const claims = decodeJwt(token);
  t.match(claims, { namespace: 'ns-a', sub: 'alice', role: 'owner' });
  t.equal((claims.exp as number) - (claims.iat as number), 120);
  t.match(r.stderr, /minted a HS256 token for subject "alice" of namespace "ns-a" \(owner\), valid 120 s/);
  const keyFile = join(dir, 'jwt.key');
  const k = await orama(['token', 'key', '--namespace', 'ns-a', '--out', keyFile], { ORAMA_STATE: state });
  t.equal(k.code, 0, k.stderr);
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'key file is 0600');
  t.equal(k.stdout, '', 'nothing secret on stdout');
  const vk = await loadVerificationKey('HS256', readFileSync(keyFile, 'utf8').trim());
  t.match(await verifyToken(token, vk), { namespace: 'ns-a', sub: 'alice', owner: true });
  // a member token, same key
  const m = await orama(['token', 'mint', '--namespace', 'ns-a', '--subject', 'bob', '--state', state]);
  t.match(await verifyToken(m.stdout.trim(), vk), { sub: 'bob', owner: false });
  // the key's algorithm is fixed once created
  const clash = await orama(['token', 'mint', '--namespace', 'ns-a', '--subject', 'x', '--alg', 'EdDSA', '--state', state]);
  t.equal(clash.code, 2);
  t.match(clash.stderr, /already has a HS256 key/);
  // EdDSA namespace: key file is the public key
  const ed = await orama(['token', 'key', '--namespace', 'ns-e', '--alg', 'EdDSA', '--out', join(dir, 'ed.pub'), '--state', state]);
  t.equal(ed.code, 0, ed.stderr);
  t.match(readFileSync(join(dir, 'ed.pub'), 'utf8'), /^-----BEGIN PUBLIC KEY-----/);
});

t.test('apikey create / list / revoke', async (t) => {
  const c = await orama(['apikey', 'create', '--namespace', 'ns-a', '--subject', 'svc', '--owner', '--state', state]);
  t.equal(c.code, 0, c.stderr);
  const key = c.stdout.trim();
  t.match(key, /^oak_[0-9a-f]{12}_/);
  const id = key.slice(4, 16);
  t.match(c.stderr, new RegExp(`created API key ${id} for subject "svc" of namespace "ns-a" \\(owner\\)`));
  const store = await openSqliteStore(state);
  t.match(await store.verifyApiKey(key), { subject: 'svc', owner: true });
  const l = await orama(['apikey', 'list', '--namespace', 'ns-a', '--state', state]);
  t.match(l.stdout, new RegExp(`^${id}\tsvc\towner\tactive$`, 'm'));
  t.notOk(l.stdout.includes(key.slice(17)), 'list prints no key material');
  const wrongNs = await orama(['apikey', 'revoke', '--namespace', 'ns-b', '--id', id, '--state', state]);
  t.equal(wrongNs.code, 1);
  t.match(wrongNs.stderr, new RegExp(`no active API key "${id}" in namespace "ns-b"`));
  const rv = await orama(['apikey', 'revoke', '--namespace', 'ns-a', '--id', id, '--state', state]);
  t.equal(rv.code, 0, rv.stderr);
  t.equal(await store.verifyApiKey(key), null);
  await store.close();
  const out = join(dir, 'key.txt');
  const o = await orama(['apikey', 'create', '--namespace', 'ns-a', '--subject', 's2', '--out', out, '--state', state]);
  t.equal(o.stdout, '');
  t.equal(statSync(out).mode & 0o777, 0o600);
});

t.test('apikey with WebRTC enabled but the cluster unreachable: key kept, exit 1, told how to finish', async (t) => {
  const store = await openSqliteStore(state);
  await store.putWebrtcConfig({ namespace: 'ns-w', enabled: true, turnSecret: new Secret('turn-secret-of-ns-w-0123456789abcdef'), sfuNodeCount: 3, turnNodeCount: 2, turnTtl: 600 });
  await store.close();
  // Three nodes on a closed loopback port: SSH is refused at once.
  const inv = join(dir, 'unreachable.yml');
  const host = (i: number) => `    n${i}: { address: 127.0.0.1, port: 1, user: root, key: ${join(dir, 'no-such-key')}, public_ip: 127.0.0.1, wg_ip: 10.0.0.${i} }`;
  writeFileSync(inv, ['all:', '  hosts:', host(1), host(2), host(3), '  children:', '    cluster:', '      hosts: { n1: {}, n2: {}, n3: {} }', ''].join('\n'));
  const plan = await orama(['apikey', 'create', '--namespace', 'ns-w', '--subject', 'svc', '--plan', '-i', inv, '--state', state]);
  t.equal(plan.stdout, '', 'a plan prints no key');
  t.match(plan.stderr, /plan: would create an API key for subject "svc" of namespace "ns-w"/);
  const c = await orama(['apikey', 'create', '--namespace', 'ns-w', '--subject', 'svc', '-i', inv, '--state', state]);
  t.equal(c.code, 1, c.stderr);
  const key = c.stdout.trim();
  t.match(key, /^oak_[0-9a-f]{12}_/, 'the key is still printed: it exists in the operator store');
  t.match(c.stderr, /the cluster's database was NOT updated; the operator store was\. Re-run `orama apikey sync --namespace ns-w`/);
  t.notOk(c.stderr.includes(key.slice(17)), 'the key is not in the error output');
  const again = await openSqliteStore(state);
  t.match(await again.verifyApiKey(key), { subject: 'svc' });
  t.equal((await again.listApiKeys('ns-w')).length, 1, 'the plan created nothing, the create one key');
  await again.close();
  const none = await orama(['apikey', 'sync', '--namespace', 'ns-a', '--state', state]);
  t.equal(none.code, 1);
  t.match(none.stderr, /namespace "ns-a" has no WebRTC on a cluster: nothing to sync/);
});

t.test('usage errors name the flag', async (t) => {
  for (const [args, msg] of [
    [['token', 'mint', '--subject', 'a', '--state', state], /--namespace is required/],
    [['token', 'mint', '--namespace', 'ns-a', '--state', state], /--subject is required/],
    [['token', 'mint', '--namespace', 'Bad', '--subject', 'a', '--state', state], /--namespace: invalid namespace name "Bad"/],
    [['token', 'mint', '--namespace', 'ns-a', '--subject', 'a', '--ttl', '0', '--state', state], /--ttl must be whole seconds/],
    [['token', 'mint', '--namespace', 'ns-z', '--subject', 'a', '--alg', 'RS256', '--state', state], /--alg must be HS256, ES256 or EdDSA/],
    [['token', 'bogus', '--namespace', 'ns-a', '--state', state], /unknown command "orama token bogus"/],
    [['apikey', 'create', '--namespace', 'ns-a', '--subject', 'a', '--frob'], /Unknown option '--frob'/],
  ] as const) {
    const r = await orama([...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, msg);
  }
  const badState = await orama(['apikey', 'list', '--namespace', 'ns-a', '--state', join(dir, 'state.db', 'nested.db')]);
  t.equal(badState.code, 1);
  t.match(badState.stderr, /cannot open SQLite state file .*nested\.db/);
});
