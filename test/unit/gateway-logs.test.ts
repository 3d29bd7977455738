// The TURN secret, JWTs, API keys and the internal key never appear in the gateway's log:
// every line of a full request cycle (at trace level, errors included, a WebSocket upgrade
// included) is captured and searched.
import t from 'tap';
import { WebSocket } from 'ws';
import { gatewayFixture } from '../helpers/gateway-fixture.ts';
import { startStandinSfu } from '../helpers/standin-sfu.ts';

const KEY = 'internal-key-for-the-log-test-0123456789';

t.test('no secret in any log line of a full request cycle', async (t) => {
  const sfu = await startStandinSfu('node-1', KEY);
  t.teardown(() => sfu.stop());
  const f = await gatewayFixture(t, { logLevel: 'trace', accessLog: true, internalKey: KEY, sfuNodes: [{ node: 'node-1', ip: sfu.ip, signal_port: sfu.port }] });
  const jwt = await f.token('ns-a', 'alice', { owner: true });
  const apiKey = await f.apiKey('ns-a', 'svc', true);
  const foreignKey = await f.apiKey('ns-b', 'mallory', true);
  const bearer = { authorization: `Bearer ${jwt}` };
  const credentials: string[] = [];

  const calls = [
    { method: 'POST', url: '/v1/webrtc/turn/credentials', headers: bearer },
    { method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { 'x-api-key': apiKey } },
    { method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { 'x-api-key': foreignKey } },
    { method: 'POST', url: '/v1/webrtc/turn/credentials', headers: { authorization: `Bearer ${jwt}x` } },
    { method: 'POST', url: '/v1/webrtc/turn/credentials', headers: bearer, payload: { ttl: 1 } },
    { method: 'POST', url: '/v1/webrtc/rooms', headers: bearer, payload: { room_id: 'log-room' } },
    { method: 'POST', url: '/v1/webrtc/rooms', headers: { 'x-api-key': apiKey }, payload: { room_id: 'log-room' } },
    { method: 'GET', url: '/v1/webrtc/rooms', headers: { 'x-api-key': apiKey } },
    { method: 'GET', url: '/v1/webrtc/signal?room=log-room', headers: { 'sec-websocket-protocol': `Bearer, ${jwt}` } },
    { method: 'DELETE', url: '/v1/webrtc/rooms?room_id=log-room', headers: bearer },
    { method: 'GET', url: '/health', headers: bearer },
  ];
  for (const c of calls) {
    const res = await f.app.inject(c as never);
    if (res.statusCode === 200 && c.url.includes('credentials')) credentials.push(res.json().credential);
  }
  // a real upgrade through a listening gateway, so the proxy path logs too
  await f.store.createRoom({ namespace: 'ns-a', roomId: 'ws-room', sfuNode: 'node-1', owner: 'alice' });
  await f.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (f.app.server.address() as { port: number }).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/webrtc/signal?room=ws-room`, ['Bearer', jwt]);
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  ws.send('hello');
  await new Promise((r) => ws.once('message', r));
  ws.close();
  await new Promise((r) => ws.once('close', r));

  const log = f.logs.join('');
  t.ok(f.logs.length >= calls.length, `captured ${f.logs.length} log lines`);
  t.match(log, /"path":"\/v1\/webrtc\/turn\/credentials","status":200,"ms":\d+,"principal":"jwt:ns-a:alice"/, 'requests are logged (access_log), with the principal');
  t.match(log, /"status":401/, 'refusals too');
  const secrets: [string, string][] = [
    ['TURN secret', f.turnSecret],
    ['JWT', jwt],
    ['JWT signature', jwt.split('.')[2]],
    ['API key', apiKey],
    ['API key secret part', apiKey.slice(17)],
    ['foreign API key', foreignKey],
    ['internal key', KEY],
    ['JWT signing key', f.keys['ns-a'].signingKey.reveal()],
    ...credentials.map((c, i): [string, string] => [`issued credential ${i}`, c]),
  ];
  for (const [what, value] of secrets) t.notOk(log.includes(value), `${what} not in the log`);
  t.equal(sfu.upgrades[0].headers['x-orama-internal-key'], KEY, 'the SFU did get the key (so the test would see a leak)');
});
