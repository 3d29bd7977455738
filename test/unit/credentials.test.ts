import t from 'tap';
import { credentialIssuer, issueTurnCredentials, turnCredential, turnSubject, refreshDelayMs } from '../../src/webrtc/credentials.ts';
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

t.test('username carries the expiry, namespace and subject (coturn quota key: namespace:subject)', async (t) => {
  const c = issueTurnCredentials({ secret: 's', namespace: 'myapp', subject: 'alice', urls: ['turn:10.77.0.11:3478?transport=udp'], now: 1_700_000_000 });
  t.equal(c.username, '1700000600:myapp:alice');
  t.equal(c.ttl, 600);
  t.equal(c.credential, turnCredential('s', '1700000600:myapp:alice'));
  t.equal(refreshDelayMs(600), 480_000);
});

t.test('a subject that could break the username is hashed, stably', async (t) => {
  t.equal(turnSubject('svc-billing@example.org'), 'svc-billing@example.org');
  const odd = turnSubject('mallory:admin');
  t.match(odd, /^h\.[A-Za-z0-9_-]{22}$/, 'a colon never reaches the username');
  t.equal(turnSubject('mallory:admin'), odd, 'the same subject always maps to the same quota key');
  t.not(turnSubject('mallory:admin2'), odd);
  t.match(turnSubject('x'.repeat(65)), /^h\./, 'too long for the username: hashed');
  t.match(turnSubject(''), /^h\./);
});

t.test('the hot-path issuer memoizes per subject and second, never across subjects', async (t) => {
  const issue = credentialIssuer();
  const a = issue({ secret: 's', namespace: 'myapp', subject: 'alice', urls: [], now: 1_700_000_000 });
  const b = issue({ secret: 's', namespace: 'myapp', subject: 'bob', urls: [], now: 1_700_000_000 });
  t.equal(a.username, '1700000600:myapp:alice');
  t.equal(b.username, '1700000600:myapp:bob');
  t.equal(a.credential, turnCredential('s', a.username));
  t.equal(b.credential, turnCredential('s', b.username));
  t.equal(issue({ secret: 'other', namespace: 'myapp', subject: 'alice', urls: [], now: 1_700_000_000 }).credential, turnCredential('other', a.username), 'a new secret is never served from the memo');
});

t.test('rejects bad namespace and ttl', async (t) => {
  t.throws(() => issueTurnCredentials({ secret: 's', namespace: 'My App', subject: 'a', urls: [] }), /invalid namespace name "My App"/);
  t.throws(() => issueTurnCredentials({ secret: 's', namespace: 'a', subject: 'a', urls: [], ttl: 0 }), /positive integer/);
});
