// Authentication and namespace isolation on EVERY endpoint of the gateway (fastify inject):
// 401 for missing / invalid / expired / foreign-signed credentials, 403 for valid credentials of
// another namespace, and nothing written when refused.
import t from 'tap';
import { gatewayFixture } from '../helpers/gateway-fixture.ts';
import { startStandinSfu } from '../helpers/standin-sfu.ts';
import { mintToken } from '../../src/webrtc/tokens.ts';

const ENDPOINTS = [
  { name: 'POST credentials', method: 'POST', url: '/v1/webrtc/turn/credentials' },
  { name: 'GET rooms', method: 'GET', url: '/v1/webrtc/rooms' },
  { name: 'POST rooms', method: 'POST', url: '/v1/webrtc/rooms', payload: { room_id: 'denied-room' } },
  { name: 'DELETE rooms', method: 'DELETE', url: '/v1/webrtc/rooms?room_id=existing' },
  { name: 'GET signal', method: 'GET', url: '/v1/webrtc/signal?room=existing' },
] as const;

t.test('every endpoint refuses strangers and other namespaces', async (t) => {
  const sfu = await startStandinSfu('node-1', 'unused');
  t.teardown(() => sfu.stop());
  const f = await gatewayFixture(t, { sfuNodes: [{ node: 'node-1', ip: sfu.ip, signal_port: sfu.port }] });
  await f.store.createRoom({ namespace: 'ns-a', roomId: 'existing', sfuNode: 'node-1', owner: 'alice' });
  const before = JSON.stringify(await f.store.listRooms('ns-a'));

  const nsBToken = await f.token('ns-b', 'mallory', { owner: true });                         // B's key
  const forgedClaim = await mintToken({ ...f.keys['ns-a'], namespace: 'ns-b' }, { subject: 'mallory', owner: true, ttl: 600 }); // A's key, B's claim
  const expired = await f.token('ns-a', 'alice', { owner: true, ttl: 10, now: Math.floor(Date.now() / 1000) - 3600 });
  const nsBKey = await f.apiKey('ns-b', 'mallory', true);
  const revoked = await f.store.createApiKey({ namespace: 'ns-a', subject: 'old', owner: true });
  await f.store.revokeApiKey('ns-a', revoked.info.id);
  const validA = await f.token('ns-a', 'alice', { owner: true });

  const cases = [
    { who: 'no credentials', headers: {}, status: 401, msg: /missing credentials/ },
    { who: 'malformed bearer', headers: { authorization: 'Bearer not.a.jwt' }, status: 401, msg: /token malformed/ },
    { who: 'empty bearer', headers: { authorization: 'Bearer ' }, status: 401, msg: /token malformed/ },
    { who: 'basic auth', headers: { authorization: 'Basic YTpi' }, status: 401, msg: /token malformed/ },
    { who: 'tampered signature', headers: { authorization: `Bearer ${validA.slice(0, -3)}AAA` }, status: 401, msg: /signature invalid/ },
    { who: 'expired token', headers: { authorization: `Bearer ${expired}` }, status: 401, msg: /token expired/ },
    { who: 'token signed with namespace B key', headers: { authorization: `Bearer ${nsBToken}` }, status: 401, msg: /signature invalid/ },
    { who: 'A-signed token claiming namespace B', headers: { authorization: `Bearer ${forgedClaim}` }, status: 403, msg: /namespace "ns-b" may not use namespace "ns-a"/ },
    { who: 'API key of namespace B', headers: { 'x-api-key': nsBKey }, status: 403, msg: /namespace "ns-b" may not use namespace "ns-a"/ },
    { who: 'unknown API key', headers: { 'x-api-key': 'oak_0123456789ab_' + 'x'.repeat(43) }, status: 401, msg: /invalid or revoked API key/ },
    { who: 'revoked API key', headers: { 'x-api-key': revoked.key.reveal() }, status: 401, msg: /invalid or revoked API key/ },
  ];
  for (const ep of ENDPOINTS) {
    for (const c of cases) {
      const res = await f.app.inject({ method: ep.method, url: ep.url, headers: c.headers, ...('payload' in ep ? { payload: ep.payload } : {}) });
      t.equal(res.statusCode, c.status, `${ep.name} / ${c.who} → ${c.status}`);
      t.match(res.json(), { error: c.status === 401 ? 'unauthorized' : 'forbidden', message: c.msg }, `${ep.name} / ${c.who}: says why`);
      if (c.status === 401) t.equal(res.headers['www-authenticate'], 'Bearer realm="orama-webrtc"');
      t.equal(res.headers['permissions-policy'], 'camera=(self), microphone=(self)', 'headers on refusals too');
    }
  }
  t.equal(JSON.stringify(await f.store.listRooms('ns-a')), before, 'no refused request changed the rooms');
  t.same(sfu.closed, [], 'no refused request reached the SFU');
  t.same(await f.store.listRooms('ns-b'), [], 'nothing was created in namespace B either');
});

t.test('the WebSocket subprotocol pair carries a JWT; a non-owner is 403 on owner routes', async (t) => {
  const sfu = await startStandinSfu('node-1', 'unused');
  t.teardown(() => sfu.stop());
  const f = await gatewayFixture(t, { sfuNodes: [{ node: 'node-1', ip: sfu.ip, signal_port: sfu.port }] });
  const member = await f.token('ns-a', 'bob');
  const memberKey = await f.apiKey('ns-a', 'svc', false);
  // plain GET with the subprotocol header: authenticated, then 426 because it is not an upgrade
  let res = await f.app.inject({ method: 'GET', url: '/v1/webrtc/signal?room=lobby', headers: { 'sec-websocket-protocol': `Bearer, ${await f.token('ns-a', 'alice', { owner: true })}` } });
  t.equal(res.statusCode, 426);
  res = await f.app.inject({ method: 'GET', url: '/v1/webrtc/signal?room=lobby', headers: { 'sec-websocket-protocol': 'Bearer, garbage' } });
  t.equal(res.statusCode, 401);
  res = await f.app.inject({ method: 'GET', url: '/v1/webrtc/signal?room=lobby', headers: { 'sec-websocket-protocol': 'chat' } });
  t.equal(res.statusCode, 401, 'a subprotocol list without Bearer is no credential');
  for (const headers of [{ authorization: `Bearer ${member}` }, { 'x-api-key': memberKey }]) {
    res = await f.app.inject({ method: 'POST', url: '/v1/webrtc/rooms', headers, payload: { room_id: 'r' } });
    t.equal(res.statusCode, 403);
    t.match(res.json(), { error: 'forbidden', message: /is not an owner of namespace "ns-a"/ });
    res = await f.app.inject({ method: 'DELETE', url: '/v1/webrtc/rooms?room_id=r', headers });
    t.equal(res.statusCode, 403);
    res = await f.app.inject({ method: 'GET', url: '/v1/webrtc/rooms', headers });
    t.equal(res.statusCode, 200, 'members may list');
    res = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers });
    t.equal(res.statusCode, 200, 'members get TURN credentials');
  }
  t.same(await f.store.listRooms('ns-a'), [], 'nothing written by refused creates');
});

t.test('EdDSA and ES256 keys verify too; a token of the wrong algorithm does not', async (t) => {
  for (const alg of ['EdDSA', 'ES256'] as const) {
    const f = await gatewayFixture(t, { alg });
    const tok = await f.token('ns-a', 'alice');
    const res = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { authorization: `Bearer ${tok}` } });
    t.equal(res.statusCode, 200, `${alg} token accepted`);
    const hs = await mintToken({ namespace: 'ns-a', alg: 'HS256', kid: 'x', signingKey: f.keys['ns-a'].signingKey, publicKey: null }, { subject: 'a', owner: true, ttl: 60 });
    const bad = await f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { authorization: `Bearer ${hs}` } });
    t.equal(bad.statusCode, 401, `${alg} gateway refuses an HS256 token (algorithm confusion)`);
    t.match(bad.json().message, /algorithm not allowed/);
  }
});

t.test('the verified-token cache never outlives the token', async (t) => {
  const f = await gatewayFixture(t);
  const now = Math.floor(Date.now() / 1000);
  const short = await f.token('ns-a', 'alice', { ttl: 2, now });
  const call = () => f.app.inject({ method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { authorization: `Bearer ${short}` } });
  t.equal((await call()).statusCode, 200);
  t.equal((await call()).statusCode, 200, 'cached');
  // 5 s of clock skew are allowed; the cache keeps a token only until its exp (plus that skew)
  await new Promise((r) => setTimeout(r, (now + 2 + 6) * 1000 - Date.now()));
  t.equal((await call()).statusCode, 401, 'expired token refused after the cache entry lapsed');
});
