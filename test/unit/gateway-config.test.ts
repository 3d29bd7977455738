// gateway.json validation, secret files, and main.ts refusing bad configs with the field named.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { resolveGatewayConfig, loadGatewayConfigFile } from '../../src/gateway/config.ts';
import { generateJwtKey, verificationKeyText } from '../../src/webrtc/tokens.ts';

const dir = mkdtempSync(join(tmpdir(), 'orama-gwcfg-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const hs = generateJwtKey('ns-a', 'HS256');
const ed = generateJwtKey('ns-a', 'EdDSA');
writeFileSync(join(dir, 'hs.key'), verificationKeyText(hs));
writeFileSync(join(dir, 'ed.pub'), verificationKeyText(ed));
writeFileSync(join(dir, 'internal.key'), 'internal-key-0123456789abcdef');
writeFileSync(join(dir, 'short.key'), 'short');

const good = () => ({
  namespace: 'ns-a',
  listen: { host: '127.0.0.1', port: 0 },
  store: { driver: 'sqlite', path: join(dir, 'state.db') },
  jwt: { alg: 'HS256', key_file: join(dir, 'hs.key') },
  turn: { urls: ['turn:203.0.113.1:3478?transport=udp'], ttl: 600 },
  sfu_nodes: [{ node: 'node-1', ip: '10.0.0.1', signal_port: 30000 }],
  internal_key_file: join(dir, 'internal.key'),
});

t.test('a good config loads; secrets are Secret objects', async (t) => {
  const { config, store } = await resolveGatewayConfig(good());
  t.same(store, { driver: 'sqlite', path: join(dir, 'state.db') });
  t.equal(config.jwt.alg, 'HS256');
  t.equal(JSON.stringify(config).includes('internal-key-0123456789abcdef'), false, 'the internal key prints as (sensitive)');
  t.same(config.rateLimit, { credentialsPerMinute: 60, roomCreatesPerMinute: 30 });
  t.equal(config.accessLog, false, 'no per-request log lines unless access_log is set');
  const withEd = await resolveGatewayConfig({ ...good(), jwt: { alg: 'EdDSA', key_file: join(dir, 'ed.pub') } });
  t.equal(withEd.config.jwt.alg, 'EdDSA');
  const rq = await resolveGatewayConfig({ ...good(), store: { driver: 'rqlite', urls: ['http://10.0.0.1:4001', 'http://10.0.0.2:4001'] } });
  t.same(rq.store, { driver: 'rqlite', urls: ['http://10.0.0.1:4001', 'http://10.0.0.2:4001'] });
});

t.test('bad configs name the field or file', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ namespace: 'Bad NS' }, /\/namespace must match pattern/],
    [{ listen: { host: 'x', port: 70000 } }, /\/listen\/port must be <= 65535/],
    [{ store: { driver: 'postgres' } }, /\/store/],
    [{ jwt: { alg: 'RS256', key_file: 'x' } }, /\/jwt\/alg must be equal to one of the allowed values/],
    [{ turn: { urls: ['http://x'] } }, /\/turn\/urls\/0 must match pattern/],
    [{ sfu_nodes: [{ node: 'a', ip: '1', signal_port: 1 }, { node: 'a', ip: '2', signal_port: 2 }] }, /sfu_nodes: node "a" is listed twice/],
    [{ internal_key_file: join(dir, 'missing.key') }, /internal_key_file: cannot read .*missing\.key: ENOENT/],
    [{ internal_key_file: join(dir, 'short.key') }, /internal_key_file: .*short\.key holds fewer than 16 characters/],
    [{ jwt: { alg: 'EdDSA', key_file: join(dir, 'hs.key') } }, /jwt\.key_file: .*hs\.key is not a usable EdDSA verification key/],
    [{ extra: 1 }, /must NOT have additional properties/],
  ];
  for (const [patch, msg] of cases) {
    await t.rejects(resolveGatewayConfig({ ...good(), ...patch }), { name: 'ConfigError', message: msg }, JSON.stringify(patch).slice(0, 60));
  }
  await t.rejects(loadGatewayConfigFile(join(dir, 'nope.json')), { message: /--config: cannot read .*nope\.json: ENOENT/ });
  writeFileSync(join(dir, 'bad.json'), '{');
  await t.rejects(loadGatewayConfigFile(join(dir, 'bad.json')), { message: /bad\.json: not JSON/ });
});

t.test('main.ts: exits non-zero naming the problem, never printing a secret', async (t) => {
  const run = (args: string[]) => new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/gateway/main.ts', ...args], { timeout: 30_000 }, (err, _o, stderr) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stderr }));
  });
  let r = await run([]);
  t.equal(r.code, 2);
  t.match(r.stderr, /--config \/path\/gateway.json is required/);
  writeFileSync(join(dir, 'gw.json'), JSON.stringify({ ...good(), jwt: { alg: 'EdDSA', key_file: join(dir, 'hs.key') } }));
  r = await run(['--config', join(dir, 'gw.json')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /jwt\.key_file: .*hs\.key is not a usable EdDSA verification key/);
  t.notOk(r.stderr.includes(hs.signingKey.reveal()), 'the key file content is not echoed');
});
