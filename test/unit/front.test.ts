// The HTTPS front's pieces that need no cluster: the CA and certificate the tool makes (real
// openssl), the check that a namespace's name is on the front's certificate before enable runs,
// the Caddyfile that derives a gateway socket from the host name (the same path names.ts gives
// the gateway), and the gateway's socket listen (a real fastify on a real Unix socket).
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { ensureFrontTls } from '../../src/secret/ca.ts';
import { checkFrontCertificate } from '../../src/namespace/tls.ts';
import { renderText } from '../../src/provision/template.ts';
import { gatewaySocket } from '../../src/webrtc/names.ts';
import { checkGatewayConfigFile } from '../../src/gateway/config.ts';
import { gatewayFixture } from '../helpers/gateway-fixture.ts';
import { tempDir } from '../helpers/tmp.ts';

const tmpDir = (t: { teardown(fn: () => void): void }) => tempDir(t, 'orama-front-');

t.test('the CA and the front certificate: made once, kept, re-issued only for another domain', async (t) => {
  const dir = join(tmpDir(t), 'tls');
  const a = ensureFrontTls(dir, 'orama.test');
  const cert = new X509Certificate(readFileSync(a.cert));
  const ca = new X509Certificate(readFileSync(a.ca));
  t.ok(cert.verify(ca.publicKey), 'the certificate is signed by the CA');
  t.ok(ca.ca, 'the CA is a CA');
  t.ok(cert.checkHost('ns-demo.orama.test'), 'it names ns-demo.orama.test (the wildcard)');
  t.notOk(cert.checkHost('turn.ns-demo.orama.test'), 'but not two labels below (as browsers match wildcards)');
  t.equal(statSync(a.key).mode & 0o777, 0o600, 'the key is 0600');
  t.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600, 'the CA key is 0600');
  const again = ensureFrontTls(dir, 'orama.test');
  t.equal(readFileSync(again.cert, 'utf8'), readFileSync(a.cert, 'utf8'), 'a second run keeps the certificate');
  const caBefore = readFileSync(a.ca, 'utf8');
  const other = ensureFrontTls(dir, 'other.test');
  t.ok(new X509Certificate(readFileSync(other.cert)).checkHost('ns-x.other.test'), 'another domain gets a new certificate');
  t.equal(readFileSync(other.ca, 'utf8'), caBefore, '… from the same CA (what a person trusted stays trusted)');
  t.throws(() => ensureFrontTls(dir, 'localhost'), /"localhost" is not a DNS domain/);
});

t.test('enable refuses a front certificate that does not name the namespace, before anything runs', async (t) => {
  const dir = tmpDir(t);
  const tls = ensureFrontTls(join(dir, 'tls'), 'orama.test');
  const inventoryFile = join(dir, 'inventory.yml');
  writeFileSync(inventoryFile, '');
  const cluster = (vars: Record<string, unknown>) => ({ inventoryFile, nodes: [{ name: 'node1', vars }] }) as any;
  t.doesNotThrow(() => checkFrontCertificate(cluster({ front_tls_cert: tls.cert }), 'ns-demo.orama.test'));
  t.doesNotThrow(() => checkFrontCertificate(cluster({ front_tls_cert: 'tls/front.pem' }), 'ns-demo.orama.test'), 'a path relative to the inventory file');
  t.throws(() => checkFrontCertificate(cluster({ front_tls_cert: tls.cert }), 'ns-demo.example.org'), /host node1: front_tls_cert .*front\.pem names DNS:\*\.orama\.test, DNS:orama\.test, not ns-demo\.example\.org/);
  t.throws(() => checkFrontCertificate(cluster({}), 'ns-demo.orama.test'), /host node1: front_tls_cert is not set/);
  t.throws(() => checkFrontCertificate(cluster({ front_tls_cert: 'nope.pem' }), 'ns-demo.orama.test'), /host node1: front_tls_cert: cannot read a PEM certificate from .*nope\.pem \(ENOENT\)/);
});

t.test('the Caddyfile proxies ns-NAME.… to the socket the gateway of NAME listens on', async (t) => {
  const text = renderText(readFileSync('roles/front/templates/Caddyfile.j2', 'utf8'), { public_ip: '10.77.0.11', front_state_dir: 'orama-front' });
  const matcher = /header_regexp ns Host (\S+)/.exec(text)![1];
  const upstream = /reverse_proxy unix\/(\S+)/.exec(text)![1];
  const re = new RegExp(matcher);
  for (const [host, ns] of [['ns-demo.orama.test', 'demo'], ['ns-a-b.x.example.org:443', 'a-b']] as const) {
    const m = re.exec(host);
    t.ok(m, `${host} is routed`);
    t.equal(upstream.replace('{re.ns.1}', m![1]), gatewaySocket(ns), `${host} → ${gatewaySocket(ns)} (names.ts)`);
  }
  for (const host of ['demo.orama.test', 'ns-.orama.test', 'ns-../x.orama.test', 'ns-Demo.orama.test', 'x.ns-demo.orama.test']) t.notOk(re.test(host), `${host} is not routed`);
  t.match(text, /bind 10\.77\.0\.11/, 'the front binds the public address only');
  t.match(text, /admin off/, 'no admin API');
  for (const h of ['Sec-Websocket-Protocol', 'X-Api-Key', 'Authorization']) t.equal(text.split(`request>headers>${h} delete`).length - 1, 2, `${h} is deleted from the access log and from error entries`);
  t.notMatch(text, /\{\{|\{%/, 'fully rendered');
});

t.test('the gateway listens on a Unix socket (the front connects as another user)', async (t) => {
  t.doesNotThrow(() => checkGatewayConfigFile({ ...baseConfig(), listen: { socket: '/run/orama-gateway-x/http.sock' } }));
  t.throws(() => checkGatewayConfigFile({ ...baseConfig(), listen: { socket: 'relative.sock' } }), /\/listen/);
  t.throws(() => checkGatewayConfigFile({ ...baseConfig(), listen: { socket: '/x.sock', port: 1 } }), /\/listen/);
  const g = await gatewayFixture(t, {});
  const path = join(g.dir, 'http.sock');
  await g.app.listen({ path, writableAll: true, readableAll: true }); // as main.ts does for { socket }
  t.equal(statSync(path).mode & 0o777, 0o777, 'the socket is connectable by the front\'s user (its directory limits who sees it)');
  const body = await new Promise<string>((resolve, reject) => {
    request({ socketPath: path, path: '/health', headers: { host: 'ns-x.orama.test', 'x-forwarded-for': '192.0.2.7' } }, (r) => {
      let s = '';
      r.on('data', (d) => (s += d));
      r.on('end', () => resolve(`${r.statusCode} ${s}`));
    }).on('error', reject).end();
  });
  t.match(body, /^200 .*"status":"ok"/, '/health answers over the socket');
});

function baseConfig() {
  return {
    namespace: 'x', listen: { host: '127.0.0.1', port: 0 }, store: { driver: 'sqlite', path: '/tmp/x.db' },
    jwt: { alg: 'HS256', key_file: '/k' }, turn: { urls: ['turn:1.2.3.4:3478'] },
    sfu_nodes: [{ node: 'n1', ip: '10.0.0.1', signal_port: 30000 }], internal_key_file: '/i',
  };
}
