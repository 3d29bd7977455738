import t from 'tap';
import { issueTurnCredentials, turnCredential, refreshDelayMs } from '../../src/webrtc/credentials.ts';
import { execFileSync } from 'node:child_process';

t.test('HMAC-SHA1 known vector (RFC 2202 test case 2)', async (t) => {
  // RFC 2202: key "Jefe", data "what do ya want for nothing?" -> effcdf6ae5eb2fa2d27416d5f184df9c259a7c79
  t.equal(turnCredential('Jefe', 'what do ya want for nothing?'),
    Buffer.from('effcdf6ae5eb2fa2d27416d5f184df9c259a7c79', 'hex').toString('base64'));
});

t.test('credential matches openssl for a TURN username', async (t) => {
  const u = '1700000600:myapp';
  const expected = execFileSync('sh', ['-c', `printf %s '${u}' | openssl dgst -sha1 -hmac 'north-secret' -binary | base64`]).toString().trim();
  t.equal(turnCredential('north-secret', u), expected);
});

t.test('username carries the expiry and namespace', async (t) => {
  const c = issueTurnCredentials({ secret: 's', namespace: 'myapp', urls: ['turn:10.77.0.11:3478?transport=udp'], now: 1_700_000_000 });
  t.equal(c.username, '1700000600:myapp');
  t.equal(c.ttl, 600);
  t.equal(c.credential, turnCredential('s', '1700000600:myapp'));
  t.equal(refreshDelayMs(600), 480_000);
});

t.test('rejects bad namespace and ttl', async (t) => {
  t.throws(() => issueTurnCredentials({ secret: 's', namespace: 'My App', urls: [] }), /invalid namespace name "My App"/);
  t.throws(() => issueTurnCredentials({ secret: 's', namespace: 'a', urls: [], ttl: 0 }), /positive integer/);
});
