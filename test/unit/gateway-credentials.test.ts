// POST /v1/webrtc/turn/credentials, GET /health, headers, rate limits, unknown routes.
import t from 'tap';
import { gatewayFixture } from '../helpers/gateway-fixture.ts';
import { turnCredential } from '../../src/webrtc/credentials.ts';
import { Secret } from '../../src/secret/secret.ts';

t.test('credentials follow the TURN REST scheme with the namespace secret from the store', async (t) => {
  const f = await gatewayFixture(t);
  const tok = await f.token('ns-a', 'alice');
  const before = Math.floor(Date.now() / 1000);
  const res = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { authorization: `Bearer ${tok}` } });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.same(body.urls, ['turn:203.0.113.11:3478?transport=udp', 'turns:203.0.113.11:5349?transport=tcp']);
  t.equal(body.ttl, 600);
  const [expiry, ns, subject] = body.username.split(':');
  t.equal(ns, 'ns-a');
  t.equal(subject, 'alice', "the caller's subject: coturn's quota is per user");
  t.ok(Number(expiry) >= before + 600 && Number(expiry) <= before + 602, 'username carries the expiry');
  t.equal(body.credential, turnCredential(f.turnSecret, body.username), 'HMAC-SHA1 with the namespace secret');
  t.same(Object.keys(body).sort(), ['credential', 'ttl', 'urls', 'username'], 'nothing else in the reply');
  t.equal(res.headers['cache-control'], 'no-store');

  // a shorter ttl on request; never a longer one
  const short = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { authorization: `Bearer ${tok}` }, payload: { ttl: 120 } });
  t.equal(short.json().ttl, 120);
  const long = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { authorization: `Bearer ${tok}` }, payload: { ttl: 3600 } });
  t.equal(long.json().ttl, 600, 'capped at the namespace ttl');
  // API key principal
  const key = await f.apiKey('ns-a', 'svc');
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { 'x-api-key': key } })).statusCode, 200);
});

t.test('bad input is 400 naming the field', async (t) => {
  const f = await gatewayFixture(t);
  const headers = { authorization: `Bearer ${await f.token('ns-a', 'alice')}` };
  for (const [payload, msg] of [
    [{ ttl: 5 }, /body\/ttl must be >= 60/],
    [{ ttl: 'x' }, /body\/ttl must be integer/],
    [{ nope: 1 }, /body must NOT have additional properties/],
    [[1], /body must be object/],
  ] as const) {
    const res = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers, payload: payload as object });
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.match(res.json(), { error: 'bad_request', message: msg });
  }
  const notJson = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { ...headers, 'content-type': 'application/json' }, payload: '{nope' });
  t.equal(notJson.statusCode, 400);
  const big = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify({ ttl: 60, pad: 'x'.repeat(20_000) }) });
  t.equal(big.statusCode, 413, 'body limit');
});

t.test('a namespace whose WebRTC is disabled or absent gets 404; secret rotation is picked up', async (t) => {
  const f = await gatewayFixture(t);
  const headers = { authorization: `Bearer ${await f.token('ns-a', 'alice')}` };
  const cfg = (await f.store.getWebrtcConfig('ns-a'))!;
  const newSecret = 'rotated-secret-rotated-secret-0123';
  await f.store.putWebrtcConfig({ ...cfg, turnSecret: new Secret(newSecret) });
  // the gateway caches the config for storeCacheMs (5 s); a fresh gateway sees it at once
  const g = await gatewayFixture(t);
  await g.store.putWebrtcConfig({ ...cfg, enabled: false });
  const res = await g.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { authorization: `Bearer ${await g.token('ns-a', 'alice')}` } });
  t.equal(res.statusCode, 404);
  t.match(res.json(), { error: 'not_found', message: 'WebRTC is not enabled for namespace "ns-a"' });
  await g.store.deleteWebrtcConfig('ns-a');
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers })).statusCode, 200, 'f still uses its cached config');
});

t.test('rate limit per principal on credentials', async (t) => {
  const f = await gatewayFixture(t, { rateLimit: { credentials_per_minute: 3 } });
  const alice = { authorization: `Bearer ${await f.token('ns-a', 'alice')}` };
  const bob = { 'x-api-key': await f.apiKey('ns-a', 'bob') };
  for (let i = 0; i < 3; i++) t.equal((await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: alice })).statusCode, 200);
  const limited = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: alice });
  t.equal(limited.statusCode, 429);
  t.match(limited.json(), { error: 'rate_limited', message: /rate limit of 3 requests per minute/ });
  t.ok(limited.headers['retry-after']);
  t.equal(limited.headers['permissions-policy'], 'camera=(self), microphone=(self)');
  const aliceAgain = { authorization: `Bearer ${await f.token('ns-a', 'alice')}` };
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: aliceAgain })).statusCode, 429, 'a new token of the same subject shares the limit');
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: bob })).statusCode, 200, 'another principal is not limited');
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials' })).statusCode, 401, 'unauthenticated requests are refused before counting');
});

t.test('GET /health, unknown routes, security headers everywhere', async (t) => {
  const f = await gatewayFixture(t);
  const h = await f.app.inject({ method: 'GET', url: '/health' });
  t.equal(h.statusCode, 200);
  t.same(h.json(), { status: 'ok', namespace: 'ns-a', store: 'sqlite' });
  for (const res of [h, await f.app.inject({ method: 'GET', url: '/nope' }), await f.app.inject({ method: 'PUT', url: '/v1/webrtc/rooms' })]) {
    t.equal(res.headers['permissions-policy'], 'camera=(self), microphone=(self)');
    t.equal(res.headers['x-content-type-options'], 'nosniff');
    t.equal(res.headers['x-frame-options'], 'DENY');
    t.equal(res.headers['referrer-policy'], 'no-referrer');
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/);
    t.match(res.headers['strict-transport-security'], /max-age=/);
  }
  const nf = await f.app.inject({ method: 'GET', url: '/nope?x=1' });
  t.equal(nf.statusCode, 404);
  t.same(nf.json(), { error: 'not_found', message: 'no route GET /nope' });
  await f.store.close(); // the store goes away under the gateway
  const down = await f.app.inject({ method: 'GET', url: '/health' });
  t.equal(down.statusCode, 503);
  t.match(down.json(), { status: 'unavailable' });
});
