// Rooms over fastify inject, with stand-in SFUs (real HTTP servers; see standin-sfu.ts) for
// health, peer counts and room closing: placement on the least-loaded healthy SFU, reassignment
// away from a draining or stopped SFU, owner rules, and every error.
import t, { type Test } from 'tap';
import { gatewayFixture } from '../helpers/gateway-fixture.ts';
import { startStandinSfu, type StandinSfu } from '../helpers/standin-sfu.ts';

const KEY = 'internal-key-of-the-test-0123456789';

async function sfus(t: Test, n: number): Promise<StandinSfu[]> {
  const list: StandinSfu[] = [];
  for (let i = 1; i <= n; i++) list.push(await startStandinSfu(`node-${i}`, KEY));
  t.teardown(() => Promise.all(list.map((s) => s.stop().catch(() => undefined))));
  return list;
}
const asNodes = (list: StandinSfu[]) => list.map((s) => ({ node: s.node, ip: s.ip, signal_port: s.port }));

t.test('create, idempotent for the owner, 409 for another, list with peers, delete tells the SFU', async (t) => {
  const nodes = await sfus(t, 2);
  const f = await gatewayFixture(t, { healthCacheMs: 0, internalKey: KEY, sfuNodes: asNodes(nodes) });
  nodes[0].peers.set('busy-elsewhere', 3); // node-1 carries 3 peers, node-2 none
  const alice = { authorization: `Bearer ${await f.token('ns-a', 'alice', { owner: true })}` };
  const carol = { 'x-api-key': await f.apiKey('ns-a', 'carol', true) };
  const member = { authorization: `Bearer ${await f.token('ns-a', 'bob')}` };

  let res = await f.app.inject({ method: 'POST', url: '/v1/webrtc/rooms', headers: alice, payload: { room_id: 'lobby' } });
  t.equal(res.statusCode, 201);
  t.match(res.json(), { room_id: 'lobby', sfu_node: 'node-2', owner: 'alice', peers: null });
  res = await f.app.inject({ method: 'POST', url: '/v1/webrtc/rooms', headers: alice, payload: { room_id: 'lobby' } });
  t.equal(res.statusCode, 200, 'idempotent for its owner');
  t.equal(res.json().sfu_node, 'node-2');
  res = await f.app.inject({ method: 'POST', url: '/v1/webrtc/rooms', headers: carol, payload: { room_id: 'lobby' } });
  t.equal(res.statusCode, 409);
  t.match(res.json(), { error: 'conflict', message: 'room "lobby" already exists and is owned by another subject' });

  nodes[1].peers.set('lobby', 2);
  res = await f.app.inject({ method: 'GET', url: '/v1/webrtc/rooms', headers: member });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { rooms: [{ room_id: 'lobby', sfu_node: 'node-2', owner: 'alice', created_at: res.json().rooms[0].created_at, peers: 2 }] });

  res = await f.app.inject({ method: 'DELETE', url: '/v1/webrtc/rooms?room_id=lobby', headers: carol });
  t.equal(res.statusCode, 403, 'another owner may not close it');
  t.match(res.json().message, /owned by another subject/);
  res = await f.app.inject({ method: 'DELETE', url: '/v1/webrtc/rooms?room_id=lobby', headers: alice });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { room_id: 'lobby', closed: true, sfu_notified: true });
  t.same(nodes[1].closed, ['lobby'], 'the owning SFU was told, with the internal key');
  t.same(nodes[0].closed, []);
  t.equal(await f.store.getRoom('ns-a', 'lobby'), null);
  res = await f.app.inject({ method: 'DELETE', url: '/v1/webrtc/rooms?room_id=lobby', headers: alice });
  t.equal(res.statusCode, 404);
  t.match(res.json(), { error: 'not_found', message: 'room "lobby" does not exist in namespace "ns-a"' });
});

t.test('placement skips draining and stopped SFUs; rooms move off them', async (t) => {
  await t.rejects(gatewayFixture(t, { sfuNodes: [] }), { message: /sfu_nodes must NOT have fewer than 1 items/ }, 'a gateway needs at least one SFU node');
  const nodes = await sfus(t, 3);
  const g = await gatewayFixture(t, { healthCacheMs: 0, internalKey: KEY, sfuNodes: asNodes(nodes) });
  const alice = { authorization: `Bearer ${await g.token('ns-a', 'alice', { owner: true })}` };
  const create = async (room: string) => (await g.app.inject({ method: 'POST', url: '/v1/webrtc/rooms', headers: alice, payload: { room_id: room } })).json();

  // equal peers → fewest rooms → name
  t.equal((await create('r1')).sfu_node, 'node-1');
  t.equal((await create('r2')).sfu_node, 'node-2');
  t.equal((await create('r3')).sfu_node, 'node-3');
  nodes[0].status = 'draining';
  t.equal((await create('r4')).sfu_node, 'node-2', 'draining node-1 gets no new room');
  // r1 lives on draining node-1: re-creating (or joining) it moves it
  const moved = await g.app.inject({ method: 'POST', url: '/v1/webrtc/rooms', headers: alice, payload: { room_id: 'r1' } });
  t.equal(moved.statusCode, 200);
  t.equal(moved.json().sfu_node, 'node-3', 'room reassigned away from the draining SFU to the least loaded');
  await nodes[2].stop();
  t.equal((await create('r5')).sfu_node, 'node-2', 'stopped node-3 gets nothing');
  await nodes[1].stop();
  const none = await g.app.inject({ method: 'POST', url: '/v1/webrtc/rooms', headers: alice, payload: { room_id: 'r6' } });
  t.equal(none.statusCode, 503);
  t.match(none.json(), { error: 'unavailable', message: 'no healthy SFU for namespace "ns-a" (node-1, node-2, node-3)' });
  t.equal(await g.store.getRoom('ns-a', 'r6'), null, 'nothing written');
  // closing a room whose SFU is down still removes it (its peers are gone with the SFU)
  const del = await g.app.inject({ method: 'DELETE', url: '/v1/webrtc/rooms?room_id=r5', headers: alice });
  t.same(del.json(), { room_id: 'r5', closed: true, sfu_notified: false });
  // list: peers unknown (null) for nodes that cannot say
  const list = (await g.app.inject({ method: 'GET', url: '/v1/webrtc/rooms', headers: alice })).json();
  t.same(list.rooms.map((r: { room_id: string; peers: number | null }) => [r.room_id, r.peers]), [['r1', null], ['r2', null], ['r3', null], ['r4', null]]);
});

t.test('an SFU that refuses to close a room → 502 and the room stays', async (t) => {
  const wrongKey = await startStandinSfu('node-1', 'not-the-gateway-key');
  t.teardown(() => wrongKey.stop());
  const f = await gatewayFixture(t, { sfuNodes: [{ node: 'node-1', ip: wrongKey.ip, signal_port: wrongKey.port }] });
  await f.store.createRoom({ namespace: 'ns-a', roomId: 'stuck', sfuNode: 'node-1', owner: 'alice' });
  const res = await f.app.inject({ method: 'DELETE', url: '/v1/webrtc/rooms?room_id=stuck', headers: { authorization: `Bearer ${await f.token('ns-a', 'alice', { owner: true })}` } });
  t.equal(res.statusCode, 502);
  t.match(res.json(), { error: 'bad_gateway', message: 'SFU on node "node-1" refused to close room "stuck" (HTTP 401)' });
  t.ok(await f.store.getRoom('ns-a', 'stuck'), 'room kept for a retry');
});

t.test('room input validation: 400 naming the field, nothing written', async (t) => {
  const sfu = await startStandinSfu('node-1', 'k');
  t.teardown(() => sfu.stop());
  const f = await gatewayFixture(t, { sfuNodes: [{ node: 'node-1', ip: sfu.ip, signal_port: sfu.port }], rateLimit: { room_creates_per_minute: 100 } });
  const headers = { authorization: `Bearer ${await f.token('ns-a', 'alice', { owner: true })}` };
  const posts: [unknown, RegExp][] = [
    [{}, /body must have required property 'room_id'/],
    [{ room_id: '' }, /body\/room_id must match pattern/],
    [{ room_id: 'has space' }, /body\/room_id must match pattern/],
    [{ room_id: '../etc' }, /body\/room_id must match pattern/],
    [{ room_id: 'x'.repeat(65) }, /body\/room_id must match pattern/],
    [{ room_id: 7 }, /body\/room_id must be string/],
    [{ room_id: 'ok', extra: true }, /body must NOT have additional properties/],
  ];
  for (const [payload, msg] of posts) {
    const res = await f.app.inject({ method: 'POST', url: '/v1/webrtc/rooms', headers, payload: payload as object });
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.match(res.json(), { error: 'bad_request', message: msg });
  }
  for (const [url, msg] of [
    ['/v1/webrtc/rooms', /querystring must have required property 'room_id'/],
    ['/v1/webrtc/rooms?room_id=bad%20id', /querystring\/room_id must match pattern/],
    ['/v1/webrtc/rooms?room_id=a&x=1', /querystring must NOT have additional properties/],
  ] as const) {
    const res = await f.app.inject({ method: 'DELETE', url, headers });
    t.equal(res.statusCode, 400, url);
    t.match(res.json().message, msg);
  }
  for (const [url, msg] of [
    ['/v1/webrtc/signal', /querystring must have required property 'room'/],
    ['/v1/webrtc/signal?room=a/b', /querystring\/room must match pattern/],
  ] as const) {
    const res = await f.app.inject({ method: 'GET', url, headers });
    t.equal(res.statusCode, 400, url);
    t.match(res.json().message, msg);
  }
  const list = await f.app.inject({ method: 'GET', url: '/v1/webrtc/rooms?x=1', headers });
  t.equal(list.statusCode, 400);
  t.same(await f.store.listRooms('ns-a'), [], 'nothing written');
  t.same(sfu.closed, []);
});

t.test('rate limit per principal on room creation', async (t) => {
  const sfu = await startStandinSfu('node-1', 'k');
  t.teardown(() => sfu.stop());
  const f = await gatewayFixture(t, { sfuNodes: [{ node: 'node-1', ip: sfu.ip, signal_port: sfu.port }], rateLimit: { room_creates_per_minute: 2 } });
  const alice = { authorization: `Bearer ${await f.token('ns-a', 'alice', { owner: true })}` };
  const carol = { authorization: `Bearer ${await f.token('ns-a', 'carol', { owner: true })}` };
  const post = (h: object, room: string) => f.app.inject({ method: 'POST', url: '/v1/webrtc/rooms', headers: h as Record<string, string>, payload: { room_id: room } });
  t.equal((await post(alice, 'a1')).statusCode, 201);
  t.equal((await post(alice, 'a2')).statusCode, 201);
  const limited = await post(alice, 'a3');
  t.equal(limited.statusCode, 429);
  t.equal(limited.json().error, 'rate_limited');
  t.equal(await f.store.getRoom('ns-a', 'a3'), null, 'the limited request wrote nothing');
  t.equal((await post(carol, 'c1')).statusCode, 201, 'other principals unaffected');
  t.equal((await f.app.inject({ method: 'GET', url: '/v1/webrtc/rooms', headers: alice })).statusCode, 200, 'listing is not limited');
});
