// The gateway in front of REAL SFU processes (src/sfu/main.ts, two of them on loopback): the
// signaling proxy carries the SFU's own protocol both ways, the room list shows the SFU's peer
// counts, DELETE closes the room on the SFU, and stopping the SFU that owns a room (SIGTERM to
// its PID, as systemd would) moves the room to the other SFU when the clients reconnect.
// (gateway-signal.test.ts covers the proxy's edge cases against stand-in SFUs; the cluster e2e
// covers the same path with media on the test nodes.)
//
// The SFU refuses a loopback listen address (its media must be reachable from TURN), so both run
// in a network namespace this test creates, joined to the host by one veth pair:
//   host 10.93.K.1 ── veth ── netns ogws-<pid>: 10.93.K.2 (SFU node-1), 10.93.K.3 (SFU node-2)
// The gateway runs in this process and reaches them over that link; clients talk to the gateway
// on 127.0.0.1. The namespace (and with it the veth pair) is deleted at the end.
import t, { type Test } from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { gatewayFixture } from '../helpers/gateway-fixture.ts';

const KEY = 'internal-key-of-the-gateway-sfu-test-0123456789';
const root = new URL('../..', import.meta.url).pathname;

interface RealSfu { node: string; ip: string; proc: ChildProcess; port: number; log: string[] }

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/** The namespace and link described above; returns the namespace name and its two addresses. */
function sfuNetns(t: Test): { ns: string; addrs: [string, string] } {
  const k = (process.pid % 200) + 20;
  const ns = `ogws-${process.pid}`;
  const [hostEnd, nsEnd] = [`og${process.pid % 100000}a`, `og${process.pid % 100000}b`];
  ip('netns', 'add', ns);
  t.teardown(() => { try { ip('netns', 'del', ns); } catch { /* already gone */ } }); // takes the veth pair with it
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd, 'netns', ns);
  ip('addr', 'add', `10.93.${k}.1/24`, 'dev', hostEnd);
  ip('link', 'set', hostEnd, 'up');
  ip('-n', ns, 'addr', 'add', `10.93.${k}.2/24`, 'dev', nsEnd);
  ip('-n', ns, 'addr', 'add', `10.93.${k}.3/24`, 'dev', nsEnd);
  ip('-n', ns, 'link', 'set', nsEnd, 'up');
  return { ns, addrs: [`10.93.${k}.2`, `10.93.${k}.3`] };
}

/** Starts src/sfu/main.ts in the namespace with an ephemeral signaling port (read from its log). */
async function startRealSfu(t: Test, dir: string, ns: string, node: string, listenIp: string, mediaPorts: [number, number]): Promise<RealSfu> {
  const config = join(dir, `${node}.json`);
  writeFileSync(config, JSON.stringify({
    namespace: 'ns-a',
    listen_ip: listenIp,
    signal_port: 0,
    media_port_min: mediaPorts[0],
    media_port_max: mediaPorts[1],
    turn_urls: ['turn:127.0.0.1:3478?transport=udp'],
    turn_relay_ips: [listenIp],
    turn_secret_file: join(dir, 'turn.secret'),
    internal_key_file: join(dir, 'internal.key'),
    drain_deadline_s: 1,
  }));
  // `ip netns exec` execs node itself: proc.pid is the SFU's PID.
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', 'src/sfu/main.ts', '--config', config], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (c) => {
      buf += c;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        log.push(line);
        const m = /"event":"listening","namespace":"ns-a","address":"[\d.]+:(\d+)"/.exec(line);
        if (m) resolve(Number(m[1]));
      }
    });
    proc.stderr!.on('data', (c) => log.push(String(c)));
    proc.once('exit', (code) => reject(new Error(`SFU ${node} exited ${code}: ${log.join('\n').slice(-800)}`)));
  });
  return { node, ip: listenIp, proc, port, log };
}

/** A signaling client: every message it receives, and a way to wait for one of a type. */
function client(url: string, jwt: string) {
  const ws = new WebSocket(url, ['Bearer', jwt]);
  const got: Record<string, unknown>[] = [];
  const waiters: { type: string; resolve: (m: Record<string, unknown>) => void }[] = [];
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as Record<string, unknown>;
    got.push(m);
    for (const w of waiters.filter((x) => x.type === m.type)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
  });
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  const opened = new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const next = (type: string, timeoutMs = 10_000) => {
    const seen = got.find((m) => m.type === type);
    if (seen) { got.splice(got.indexOf(seen), 1); return Promise.resolve(seen); }
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${type}" within ${timeoutMs} ms; got ${JSON.stringify(got.map((m) => m.type))}`)), timeoutMs);
      waiters.push({ type, resolve: (m) => { clearTimeout(timer); got.splice(got.indexOf(m), 1); resolve(m); } });
    });
  };
  return { ws, opened, closed, next, send: (m: object) => ws.send(JSON.stringify(m)) };
}

t.test('signaling through the gateway to real SFUs; room list, delete, and reassignment when the owning SFU stops', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'orama-gw-sfu-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'turn.secret'), 'turn-secret-of-the-gateway-sfu-test-0123456789', { mode: 0o600 });
  writeFileSync(join(dir, 'internal.key'), KEY, { mode: 0o600 });
  const { ns, addrs } = sfuNetns(t);
  const sfus = [await startRealSfu(t, dir, ns, 'node-1', addrs[0], [43000, 43049]), await startRealSfu(t, dir, ns, 'node-2', addrs[1], [43050, 43099])];

  const f = await gatewayFixture(t, { internalKey: KEY, healthCacheMs: 0, sfuNodes: sfus.map((s) => ({ node: s.node, ip: s.ip, signal_port: s.port })) });
  await f.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `ws://127.0.0.1:${(f.app.server.address() as { port: number }).port}/v1/webrtc/signal?room=standup`;
  const ownerJwt = await f.token('ns-a', 'alice', { owner: true });
  const memberJwt = await f.token('ns-a', 'bob');
  const auth = { authorization: `Bearer ${ownerJwt}` };

  // 1. alice opens the room by joining it; the SFU answers through the proxy.
  const alice = client(url, ownerJwt);
  await alice.opened;
  alice.send({ type: 'join', room: 'standup', display: { name: 'Alice' } });
  const joined = await alice.next('joined');
  t.match(joined, { type: 'joined', protocol_version: 1, room: 'standup', peers: [] }, 'the real SFU answered the join');
  const creds = await alice.next('turn-credentials');
  t.match(creds, { username: /^\d+:ns-a:[^:]+$/ }, "and sent TURN credentials (username expiry:namespace:subject)");
  const first = (await f.store.getRoom('ns-a', 'standup'))!.sfuNode;
  const other = first === 'node-1' ? 'node-2' : 'node-1';

  // 2. bob joins; alice hears of him with the subject the gateway vouched for.
  const bob = client(url, memberJwt);
  await bob.opened;
  bob.send({ type: 'join', room: 'standup', display: { name: 'Bob' } });
  t.match(await bob.next('joined'), { peers: [{ subject: 'alice', display: { name: 'Alice' } }] }, 'bob sees alice, as authenticated by the gateway');
  t.match(await alice.next('peer-joined'), { subject: 'bob', display: { name: 'Bob' } });

  // 3. the room list carries the real SFU's peer count.
  const list = await f.app.inject({ method: 'GET', url: '/v1/webrtc/rooms', headers: auth });
  t.equal(list.statusCode, 200);
  t.match(list.json().rooms, [{ room_id: 'standup', sfu_node: first, peers: 2 }], 'two peers on the owning SFU');

  // 4. the owning SFU stops (SIGTERM, as systemctl stop): it drains, the clients are told and
  //    the socket closes; reconnecting through the gateway lands them on the other SFU.
  const owner = sfus.find((s) => s.node === first)!;
  const exited = new Promise((r) => owner.proc.once('exit', r));
  process.kill(owner.proc.pid!, 'SIGTERM');
  t.match(await alice.next('server-draining'), { type: 'server-draining' }, 'the client is told the SFU is draining');
  await Promise.all([alice.closed, bob.closed, exited]);
  const alice2 = client(url, ownerJwt);
  await alice2.opened;
  alice2.send({ type: 'join', room: 'standup' });
  t.match(await alice2.next('joined'), { room: 'standup', peers: [] }, 'rejoined after the SFU stopped');
  t.equal((await f.store.getRoom('ns-a', 'standup'))!.sfuNode, other, `the room moved from ${first} to ${other}`);
  const bob2 = client(url, memberJwt);
  await bob2.opened;
  bob2.send({ type: 'join', room: 'standup' });
  t.match(await bob2.next('joined'), { peers: [{ subject: 'alice' }] }, 'bob follows to the same SFU');

  // 5. the owner deletes the room: the SFU tells its peers and closes them with 4001.
  const del = await f.app.inject({ method: 'DELETE', url: '/v1/webrtc/rooms?room_id=standup', headers: auth });
  t.equal(del.statusCode, 200, del.body);
  t.match(await bob2.next('room-closed'), { room: 'standup' });
  t.equal(await bob2.closed, 4001, 'closed with 4001 by the SFU, passed through by the gateway');
  t.equal(await alice2.closed, 4001);
  t.equal(await f.store.getRoom('ns-a', 'standup'), null, 'the room is gone from the store');
  const survivor = sfus.find((s) => s.node === other)!;
  process.kill(survivor.proc.pid!, 'SIGTERM');
  await new Promise((r) => survivor.proc.once('exit', r));
});
