// The signaling proxy's edge cases: a real listening gateway, real WebSocket clients, and
// STAND-IN SFUs (test/helpers/standin-sfu.ts: real ws servers speaking the SFU's side of the
// contract), used here because they can be made to misbehave on cue (close with a given code,
// vanish between placement and connect, report draining). The same proxy in front of real SFU
// processes: gateway-sfu.test.ts.
import t, { type Test } from 'tap';
import { WebSocket } from 'ws';
import { gatewayFixture } from '../helpers/gateway-fixture.ts';
import { startStandinSfu, type StandinSfu } from '../helpers/standin-sfu.ts';

const KEY = 'internal-key-of-the-signal-test-0123456789';

async function setup(t: Test, n = 2) {
  const sfus: StandinSfu[] = [];
  for (let i = 1; i <= n; i++) sfus.push(await startStandinSfu(`node-${i}`, KEY));
  t.teardown(() => Promise.all(sfus.map((s) => s.stop().catch(() => undefined))));
  const f = await gatewayFixture(t, { internalKey: KEY, healthCacheMs: 0, sfuNodes: sfus.map((s) => ({ node: s.node, ip: s.ip, signal_port: s.port })) });
  await f.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (f.app.server.address() as { port: number }).port;
  return { f, sfus, url: (room: string) => `ws://127.0.0.1:${port}/v1/webrtc/signal?room=${room}` };
}

const closings = new WeakMap<WebSocket, Promise<{ code: number; reason: string }>>();

function open(url: string, protocols?: string[], headers?: Record<string, string>): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, { headers });
  // listen from the start: a close frame can arrive in the same read as the handshake
  closings.set(ws, new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() }))));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}
const next = (ws: WebSocket) => new Promise<{ data: Buffer; binary: boolean }>((r) => ws.once('message', (data, binary) => r({ data: data as Buffer, binary })));
const closed = (ws: WebSocket) => closings.get(ws)!;

t.test('JWT in the subprotocol pair: Bearer selected, frames both ways, identity headers upstream', async (t) => {
  const { f, sfus, url } = await setup(t);
  const jwt = await f.token('ns-a', 'alice', { owner: true });
  const ws = await open(url('lobby'), ['Bearer', jwt]);
  t.equal(ws.protocol, 'Bearer', 'the server selected "Bearer"');
  const room = await f.store.getRoom('ns-a', 'lobby');
  t.match(room, { sfuNode: 'node-1', owner: 'alice' }, 'an owner joining opens the room on the least-loaded SFU');
  ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
  const echo = JSON.parse((await next(ws)).data.toString());
  t.same(echo, { type: 'echo', room: 'lobby', namespace: 'ns-a', subject: 'alice', data: JSON.stringify({ type: 'join', room: 'lobby' }) });
  ws.send(Buffer.from([1, 2, 3]), { binary: true });
  const bin = await next(ws);
  t.equal(bin.binary, true);
  t.same([...bin.data], [1, 2, 3], 'binary frames pass unchanged');
  const up = sfus[0].upgrades[0];
  t.equal(up.room, 'lobby');
  t.equal(up.headers['x-orama-internal-key'], KEY);
  t.equal(up.headers['x-orama-namespace'], 'ns-a');
  t.equal(up.headers['x-orama-subject'], 'alice');
  t.equal(up.headers.authorization, undefined, 'the client JWT goes no further than the gateway');
  t.equal(up.headers['sec-websocket-protocol'], undefined);
  const c = closed(ws);
  ws.close(1000, 'bye');
  await c;
  await t.resolves(waitFor(() => sfus[0].sockets.size === 0), 'closing the client closes the SFU side');
});

t.test('API key header; the SFU closing closes the client with its code', async (t) => {
  const { f, sfus, url } = await setup(t);
  await f.store.createRoom({ namespace: 'ns-a', roomId: 'r', sfuNode: 'node-2', owner: 'alice' });
  const ws = await open(url('r'), undefined, { 'x-api-key': await f.apiKey('ns-a', 'svc') });
  t.equal(ws.protocol, '');
  ws.send('hi');
  t.equal(JSON.parse((await next(ws)).data.toString()).subject, 'svc');
  t.equal(sfus[1].upgrades.length, 1, 'proxied to the room\'s SFU (node-2)'); // the echo proved the upstream is open
  const c = closed(ws);
  ws.send('close-me');
  t.same(await c, { code: 4001, reason: 'closed by sfu' });
});

t.test('refusals before the upgrade: 401, 403, 404, 400', async (t) => {
  const { f, url, sfus } = await setup(t);
  await f.store.createRoom({ namespace: 'ns-a', roomId: 'exists', sfuNode: 'node-1', owner: 'alice' });
  const member = await f.token('ns-a', 'bob');
  for (const [what, u, protocols, headers, status, msg] of [
    ['no credentials', url('exists'), undefined, undefined, 401, /missing credentials/],
    ['bad JWT', url('exists'), ['Bearer', 'x.y.z'], undefined, 401, /token malformed/],
    ['namespace B token', url('exists'), ['Bearer', await f.token('ns-b', 'mallory', { owner: true })], undefined, 401, /signature invalid/],
    ['namespace B API key', url('exists'), undefined, { 'x-api-key': await f.apiKey('ns-b', 'm', true) }, 403, /namespace "ns-b" may not use namespace "ns-a"/],
    ['member, unknown room', url('nope'), ['Bearer', member], undefined, 404, /room "nope" does not exist/],
    ['bad room id', url('a%20b'), ['Bearer', member], undefined, 400, /querystring\/room must match pattern/],
  ] as const) {
    const err = await open(u, protocols ? [...protocols] : undefined, headers).then(() => null, (e) => e as { status: number; body: string });
    t.equal(err?.status, status, `${what} → ${status}`);
    t.match(JSON.parse(err?.body ?? '{}').message, msg, `${what}: says why`);
  }
  t.equal(sfus[0].upgrades.length + sfus[1].upgrades.length, 0, 'no refused client reached an SFU');
  t.equal(await f.store.getRoom('ns-a', 'nope'), null);
  // a member joins an existing room
  const ws = await open(url('exists'), ['Bearer', member]);
  ws.close();
});

t.test('frames above the bound close both sides', async (t) => {
  const { f, sfus, url } = await setup(t);
  const ws = await open(url('big'), ['Bearer', await f.token('ns-a', 'alice', { owner: true })]);
  await waitFor(() => sfus[0].sockets.size === 1);
  const c = closed(ws);
  ws.send('x'.repeat(65 * 1024));
  t.equal((await c).code, 1009, 'message too big');
  await t.resolves(waitFor(() => sfus[0].sockets.size === 0), 'SFU side closed too');
});

t.test('room reassignment: a draining or stopped SFU loses its rooms to a healthy one', async (t) => {
  const { f, sfus, url } = await setup(t, 3);
  const jwt = await f.token('ns-a', 'alice', { owner: true });
  const a = await open(url('moving'), ['Bearer', jwt]);
  t.match(await f.store.getRoom('ns-a', 'moving'), { sfuNode: 'node-1' });
  // node-1 drains (SFU sends server-draining; clients reconnect through the gateway)
  sfus[0].status = 'draining';
  sfus[1].peers.set('other', 5); // node-2 is busier than node-3
  const b = await open(url('moving'), ['Bearer', jwt]);
  t.match(await f.store.getRoom('ns-a', 'moving'), { sfuNode: 'node-3' }, 'moved to the least-loaded healthy SFU');
  await t.resolves(waitFor(() => sfus[2].upgrades.length === 1), 'the reconnect was proxied to node-3');
  a.close();
  b.close();
  // node-3 stops: the next client is placed on node-2
  const port3 = sfus[2].port;
  await sfus[2].stop();
  const c = await open(url('moving'), ['Bearer', jwt]);
  t.match(await f.store.getRoom('ns-a', 'moving'), { sfuNode: 'node-2' });
  c.close();
  void port3;
});

t.test('SFU gone between placement and connect: 1013, and the retry lands elsewhere', async (t) => {
  const { f, sfus, url } = await setup(t, 2);
  // cache health for a long time so the gateway still believes node-1 is up
  const g = await gatewayFixture(t, { internalKey: KEY, healthCacheMs: 60_000, sfuNodes: sfus.map((s) => ({ node: s.node, ip: s.ip, signal_port: s.port })) });
  await g.app.listen({ host: '127.0.0.1', port: 0 });
  const gurl = (room: string) => `ws://127.0.0.1:${(g.app.server.address() as { port: number }).port}/v1/webrtc/signal?room=${room}`;
  const jwt = await g.token('ns-a', 'alice', { owner: true });
  const warm = await open(gurl('r'), ['Bearer', jwt]); // warms the health cache, room on node-1
  warm.send('warm');
  await next(warm); // the upstream is fully open before the SFU goes away
  warm.close();
  await waitFor(() => sfus[0].sockets.size === 0);
  t.match(await g.store.getRoom('ns-a', 'r'), { sfuNode: 'node-1' });
  await sfus[0].stop();
  const ws = await open(gurl('r'), ['Bearer', jwt]);
  t.same(await closed(ws), { code: 1013, reason: 'SFU unavailable, reconnect' });
  const retry = await open(gurl('r'), ['Bearer', jwt]);
  t.match(await g.store.getRoom('ns-a', 'r'), { sfuNode: 'node-2' }, 'the reconnect is placed on node-2');
  retry.send('ping');
  t.equal(JSON.parse((await next(retry)).data.toString()).data, 'ping');
  retry.close();
  void f; void url;
});

t.test('closing the gateway closes its clients with 1001', async (t) => {
  const { f, url } = await setup(t, 1);
  const ws = await open(url('bye'), ['Bearer', await f.token('ns-a', 'alice', { owner: true })]);
  const c = closed(ws);
  await f.app.close();
  t.equal((await c).code, 1001);
});

t.test('an upgrade asked of any other route does not stay open', async (t) => {
  const { f } = await setup(t, 1);
  const port = (f.app.server.address() as { port: number }).port;
  for (const path of ['/health', '/v1/webrtc/rooms', '/nope']) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('still open after 3 s'), 3000);
      ws.once('unexpected-response', (_req, res) => { clearTimeout(timer); resolve(`HTTP ${res.statusCode}`); });
      ws.once('close', (code) => { clearTimeout(timer); resolve(`closed ${code}`); });
      ws.once('error', () => undefined);
    });
    t.match(outcome, /^(HTTP (200|401|404)|closed \d+)$/, `${path}: ${outcome}`);
    ws.terminate();
  }
});

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

