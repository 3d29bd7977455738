// The SFU with Node peers (@roamhq/wrtc) through a real coturn, in network namespaces:
// client netns -> coturn netns (public + internal address, ip_forward 0) -> SFU netns.
// Proves: media flows relay-only; the SFU address is unreachable from the client namespace;
// clients offering host candidates get no media and the drop counters rise; credential refresh
// arrives before expiry; DELETE /rooms closes a room; SIGTERM drains to a second SFU. The whole
// suite runs once per media engine (werift, then mediasoup), each with its own lab.
import { execFileSync } from 'node:child_process';
import tap, { type Test } from 'tap';
import { ENGINE_NAMES, type EngineName } from '../../src/sfu/engine.ts';
import { NetnsLab, TURNSERVER, requireTool } from '../helpers/sfu-netns.ts';
import { PeerProcess } from '../helpers/sfu-peer-process.ts';

requireTool(TURNSERVER, 'coturn');

async function suite(t: Test, engine: EngineName): Promise<void> {
  const lab = new NetnsLab();
  t.teardown(() => lab.destroy());
  lab.up();
  const { topo } = lab;
  const { ns, addr } = topo;
  lab.startCoturn();
  const sfu1 = lab.startSfu('sfu1', { signalPort: 30001, mediaPorts: [20000, 20499], drainDeadlineS: 5, engine });
  const sfu2 = lab.startSfu('sfu2', { signalPort: 30002, mediaPorts: [20500, 20999], engine });
  // mediasoup: two workers, and a room moves on to the second worker at 4 consumers (the pipe test).
  const short = lab.startSfu('sfu-short-ttl', { signalPort: 30003, mediaPorts: [21000, 21499], ttl: 5, engine, ...(engine === 'mediasoup' ? { workers: 2, config: { mediasoup_consumers_per_worker: 4 } } : {}) });
  const gw = await lab.startGateway(8080, [`${addr.sfu}:30001`, `${addr.sfu}:30002`]);
  // a second gateway instance that only knows the short-TTL SFU
  const gwShort = await lab.startGateway(8081, [`${addr.sfu}:30003`]);
  await Promise.all([sfu1.url, sfu2.url, short.url].map((u) => lab.waitHttp(ns.turn, `${u}/health`, 30000)));
  await Promise.all(['gateway-8080', 'gateway-8081'].map((g) => lab.waitLog(g, /listening/, 30000)));
  await lab.waitLog('coturn', /listener opened on|Total General servers/i, 10000).catch(() => {});

  const peers: PeerProcess[] = [];
  const tokens = new Map<string, string>();
  // Owners: the first of them into a room creates it (members may only join existing rooms; the
  // gateway's own tests cover that rule).
  for (const name of ['alice', 'bob', 'carol', 'rogue', 'dave', 'erin', 'frank', 'gina', 'hank', 'ivan', 'judy', 'kim']) tokens.set(name, await lab.token(name, true));
  const peer = (name: string, options: Record<string, unknown>, where = ns.client) => {
    const p = new PeerProcess(lab, where, name, { token: tokens.get(name), ...options });
    peers.push(p);
    return p;
  };
  t.teardown(async () => {
    for (const p of peers) await p.leave();
  });

  t.test('the SFU address is unreachable from the client namespace', async (t) => {
    const route = (() => {
      try {
        return execFileSync('ip', ['-n', ns.client, 'route', 'get', addr.sfu], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (error) {
        return String((error as { stderr?: string }).stderr);
      }
    })();
    t.match(route, /Network is unreachable/, 'no route from clients to the SFU');
    t.equal(lab.curl(ns.client, `${sfu1.url}/health`).status, 0, 'signaling port not reachable from clients');
    const health = lab.curl(ns.turn, `${sfu1.url}/health`);
    t.equal(health.status, 200, 'reachable from the coturn/gateway namespace');
    t.equal(JSON.parse(health.body).engine, engine, `the SFU runs the ${engine} engine`);
    t.equal(execFileSync('ip', ['netns', 'exec', ns.turn, 'sysctl', '-n', 'net.ipv4.ip_forward'], { encoding: 'utf8' }).trim(), '0');
  });

  t.test('two peers: video, audio and data flow relay-only through coturn', async (t) => {
    const alice = peer('alice', { gateway: gw.url, room: 'call', publish: true });
    const bob = peer('bob', { gateway: gw.url, room: 'call', publish: true });
    const aliceJoined = await alice.waitFor('joined');
    const bobJoined = await bob.waitFor('joined');
    await bob.waitFor('first-frame', (e) => e.from === aliceJoined.peer_id, 20000);
    await alice.waitFor('first-frame', (e) => e.from === bobJoined.peer_id, 20000);
    for (const p of [alice, bob]) {
      const s = await p.waitStats((s) => (s.inboundAudioPackets as number) > 20 && (s.framesDecoded as number) > 5);
      t.same(s.selected, { local: 'relay', remote: 'host', state: 'succeeded' }, `${p.name}: selected pair is local relay`);
      const rx = Object.values(s.received as Record<string, { frames: number; audioEnergy: number }>)[0];
      t.ok(rx.frames > 5, `${p.name} decoded video frames (${rx.frames})`);
      t.ok(rx.audioEnergy > 0, `${p.name} received non-silent audio`);
    }
    t.ok((await alice.command('send', { text: 'hi bob' })).ok, 'alice sent on the data channel');
    t.equal((await bob.waitFor('data')).text, 'hi bob', 'bob received the data channel message');
    t.ok(lab.metric(ns.turn, sfu1.url, 'orama_sfu_rtp_packets_out_total') > 50, 'SFU forwarded packets');
    const subs = lab.metric(ns.turn, sfu1.url, 'orama_sfu_subscriptions');
    t.equal(subs, 4, `audio+video each way (${subs} subscriptions)`);
    t.equal(lab.metric(ns.turn, sfu1.url, 'orama_sfu_peers'), 2);
    await alice.leave();
    await bob.leave();
  });

  t.test('a client offering only host candidates gets no media; the SFU drops and counts them', async (t) => {
    const before = lab.metric(ns.turn, sfu1.url, 'orama_sfu_dropped_candidates_total');
    const carol = peer('carol', { gateway: gw.url, room: 'call', policy: 'host-only' });
    await carol.waitFor('joined');
    await new Promise((r) => setTimeout(r, 4000));
    const s = await carol.command('stats');
    t.not(s.connection, 'connected', `carol never connects (${s.connection})`);
    t.equal(s.inboundVideoPackets, 0, 'no video reached carol');
    t.ok(lab.metric(ns.turn, sfu1.url, 'orama_sfu_dropped_candidates_total') > before, 'dropped-candidate counter rose');
    await carol.leave();
  });

  t.test('a peer that CAN reach the SFU directly is still refused: its ICE checks are dropped', async (t) => {
    // The rogue lives in the SFU namespace (address 10.92.K.3): its checks do arrive at the SFU.
    const iceCheckDrops = () => Number(/where="ice_check"} (\d+)/.exec(lab.curl(ns.turn, `${sfu1.url}/metrics`).body)?.[1]);
    const checksBefore = iceCheckDrops();
    const rogue = peer('rogue', { gateway: gw.internalUrl, room: 'call', policy: 'host-only' }, ns.sfu);
    await rogue.waitFor('joined');
    await new Promise((r) => setTimeout(r, 4000));
    // werift never answers the rogue's checks. mediasoup (ICE-lite) answers them and closes the
    // transport on the selected-tuple event, which can come after the DTLS handshake finished:
    // the rogue may see `connected` for a moment, never for long.
    const s = await rogue.waitStats((s) => s.connection !== 'connected', 20000).catch(() => rogue.command('stats'));
    t.not(s.connection, 'connected', `rogue not connected (${s.connection}; states seen: ${rogue.events.filter((e) => e.event === 'pc-state').map((e) => e.state)})`);
    if (engine === 'werift') t.notOk(rogue.find('pc-state', (e) => e.state === 'connected'), 'werift: never connected at all');
    t.equal(s.inboundVideoPackets, 0, 'no video reached the rogue');
    const iceChecks = iceCheckDrops();
    t.ok(iceChecks > 0 && iceChecks > checksBefore, `ICE checks from non-relay addresses dropped (${iceChecks})`);
    await rogue.leave();
  });

  t.test('DELETE /rooms/<room> needs the internal key and tells the peers', async (t) => {
    const dave = peer('dave', { gateway: gw.url, room: 'doomed' });
    await dave.waitFor('joined');
    // The room's SFU, as the gateway chose it (room affinity in the store).
    const sfu = (await lab.roomNode('doomed')) === 'sfu-30002' ? sfu2 : sfu1;
    t.equal(lab.curl(ns.turn, `${sfu.url}/rooms/doomed`, ['-X', 'DELETE']).status, 401, 'refused without the key');
    t.equal(lab.curl(ns.turn, `${sfu.url}/rooms/doomed`, ['-X', 'DELETE', '-H', `x-orama-internal-key: ${topo.internalKey}`]).status, 200);
    await dave.waitFor('room-closed');
    t.equal(lab.curl(ns.turn, `${sfu.url}/rooms/nope`, ['-X', 'DELETE', '-H', `x-orama-internal-key: ${topo.internalKey}`]).status, 404);
  });

  t.test('refresh-credentials arrives at 80% of the TTL, before expiry, and the call survives it', async (t) => {
    const erin = peer('erin', { gateway: gwShort.url, room: 'refresh', publish: true });
    const frank = peer('frank', { gateway: gwShort.url, room: 'refresh' });
    const first = await frank.waitFor('turn-credentials');
    const refresh = await frank.waitFor('refresh-credentials', () => true, 8000);
    const elapsed = (refresh.t - first.t) / 1000;
    // 80% of the TTL, counted back from the whole-second expiry: 1 s of rounding at most
    t.ok(elapsed >= 2.9 && elapsed <= 4.1, `refresh after ${elapsed.toFixed(2)} s of a 5 s TTL`);
    t.ok((first.expires_in_s as number) - elapsed > 0, 'the first credentials had not expired yet');
    t.not(refresh.username, first.username, 'fresh username');
    const before = await frank.waitStats((s) => (s.framesDecoded as number) > 0, 15000);
    await new Promise((r) => setTimeout(r, 2500)); // past the first credentials' expiry
    const after = await frank.command('stats');
    t.ok((after.framesDecoded as number) > (before.framesDecoded as number), 'frames keep flowing after the first credentials expired');
    await erin.leave();
    await frank.leave();
  });

  t.test('SIGTERM: server-draining, then clients rejoin the other SFU, exit 0', async (t) => {
    const gina = peer('gina', { gateway: gw.url, room: 'drain', publish: true, reconnect: true });
    const hank = peer('hank', { gateway: gw.url, room: 'drain', reconnect: true });
    await gina.waitFor('joined');
    await hank.waitFor('first-frame', () => true, 20000);
    // The SFU the gateway chose for the room (affinity in the store) is the one stopped.
    const home = await lab.roomNode('drain');
    const [victim, other] = home === 'sfu-30002' ? [sfu2, sfu1] : [sfu1, sfu2];
    const [victimName, otherNode] = home === 'sfu-30002' ? ['sfu2', 'sfu-30001'] : ['sfu1', 'sfu-30002'];
    t.ok(other.proc.exitCode === null, `the room is on ${home}; the other SFU is up`);
    const exited = new Promise<number | null>((resolve) => victim.proc.once('exit', (code) => resolve(code)));
    process.kill(victim.proc.pid!, 'SIGTERM');
    for (const p of [gina, hank]) {
      const draining = await p.waitFor('server-draining', () => true, 5000);
      const rejoined = await p.waitFor('joined', (e) => e.t > draining.t, 15000);
      t.ok(rejoined.t >= draining.t, `${p.name} rejoined after the drain notice (${rejoined.t - draining.t} ms; timings are bench material)`);
    }
    t.equal(await lab.roomNode('drain'), otherNode, `the gateway moved the room to ${otherNode} (room affinity in the store)`);
    const since = Date.now();
    await hank.waitFor('first-frame', (e) => e.t > since - 3000 && e.t > (hank.find('server-draining')!.t as number), 20000);
    t.equal(await exited, 0, 'the drained SFU exits 0');
    t.match(lab.logOf(victimName), /"event":"drained"/);
  });

  if (engine === 'mediasoup') {
    t.test('a room outgrows its worker: the next peer goes to the second worker, media crosses by pipeToRouter', async (t) => {
      /** Per worker pid: [consumers, rooms, CPU seconds]. */
      const perWorker = () => {
        const body = lab.curl(ns.turn, `${short.url}/metrics`).body;
        const of = (name: string) => {
          const sums = new Map<string, number>(); // summed over a worker's lines (CPU: user + system)
          for (const m of body.matchAll(new RegExp(`${name}\\{[^}]*pid="(\\d+)"[^}]*\\} (\\S+)`, 'g'))) sums.set(m[1], (sums.get(m[1]) ?? 0) + Number(m[2]));
          return sums;
        };
        const consumers = of('orama_sfu_worker_consumers');
        const rooms = of('orama_sfu_worker_rooms');
        const cpu = of('orama_sfu_worker_cpu_seconds_total');
        return [...consumers.keys()].map((pid) => ({ pid, consumers: consumers.get(pid)!, rooms: rooms.get(pid)!, cpu: cpu.get(pid)! }));
      };
      t.equal(perWorker().length, 2, 'two workers');
      const ivan = peer('ivan', { gateway: gwShort.url, room: 'wide', publish: true });
      const judy = peer('judy', { gateway: gwShort.url, room: 'wide', publish: true });
      const ivanId = (await ivan.waitFor('joined')).peer_id;
      const judyId = (await judy.waitFor('joined')).peer_id;
      await ivan.waitFor('first-frame', (e) => e.from === judyId, 20000);
      await judy.waitFor('first-frame', (e) => e.from === ivanId, 20000);
      const first = perWorker().find((w) => w.consumers > 0);
      t.equal(first?.consumers, 4, `ivan and judy: 4 consumers on worker ${first?.pid}, the budget`);
      const kim = peer('kim', { gateway: gwShort.url, room: 'wide', publish: true });
      const kimId = (await kim.waitFor('joined')).peer_id;
      for (const from of [ivanId, judyId]) await kim.waitFor('first-frame', (e) => e.from === from, 20000);
      t.pass('kim, on the second worker, decodes video from ivan and judy (piped to its router)');
      await ivan.waitFor('first-frame', (e) => e.from === kimId, 20000);
      await judy.waitFor('first-frame', (e) => e.from === kimId, 20000);
      t.pass("ivan and judy decode kim's video (piped the other way)");
      const s = await kim.waitStats((s) => (s.inboundAudioPackets as number) > 20);
      t.ok(Object.values(s.received as Record<string, { audioEnergy: number }>).filter((r) => r.audioEnergy > 0).length >= 2, 'kim hears both');
      const workers = perWorker();
      const second = workers.find((w) => w.pid !== first?.pid);
      t.equal(second?.consumers, 4, `kim's 4 consumers are on the second worker ${second?.pid}`);
      t.equal(workers.find((w) => w.pid === first?.pid)?.consumers, 8, "ivan's and judy's 8 stay on the first");
      t.ok(workers.every((w) => w.rooms >= 1), `the room has a router on both workers (${workers.map((w) => w.rooms)})`);
      t.ok(workers.every((w) => w.cpu > 0), `CPU reported per worker: ${workers.map((w) => `${w.pid} ${w.cpu.toFixed(2)} s`).join(', ')}`);
      t.match(lab.logOf('sfu-short-ttl'), new RegExp(`"event":"room-spilled".*"room":"wide","worker":${second?.pid},"routers":2,"consumers_on_full_worker":4`), 'the SFU logs the room spilling onto the second worker');
      // Counters never go down, although mediasoup's per-stream figures go with closed consumers.
      const counters = ['orama_sfu_rtp_bytes_in_total', 'orama_sfu_rtp_bytes_out_total', 'orama_sfu_rtp_packets_out_total'];
      const before = counters.map((c) => lab.metric(ns.turn, short.url, c));
      for (const p of [ivan, judy, kim]) await p.leave();
      await new Promise((r) => setTimeout(r, 500));
      const after = counters.map((c) => lab.metric(ns.turn, short.url, c));
      t.ok(after.every((v, i) => v >= before[i]), `counters kept after the peers left: ${counters.map((c, i) => `${c} ${before[i]} -> ${after[i]}`).join(', ')}`);
    });

    t.test('a mediasoup worker SIGKILLed: /health fails at once, the SFU exits 1 (for systemd to restart it)', async (t) => {
      const metrics = lab.curl(ns.turn, `${short.url}/metrics`).body;
      const pids = [...metrics.matchAll(/orama_sfu_worker_cpu_seconds_total\{[^}]*pid="(\d+)",mode="user"\}/g)].map((m) => Number(m[1]));
      t.ok(pids.length >= 1, `the SFU reports its worker(s) in /metrics: ${pids}`);
      t.ok(pids.every((p) => p !== short.proc.pid), 'the workers are processes of their own');
      const exited = new Promise<number | null>((resolve) => short.proc.once('exit', (code) => resolve(code)));
      process.kill(pids[0], 'SIGKILL');
      let health = lab.curl(ns.turn, `${short.url}/health`);
      for (let i = 0; i < 50 && health.status === 200; i++) {
        await new Promise((r) => setTimeout(r, 20));
        health = lab.curl(ns.turn, `${short.url}/health`);
      }
      t.equal(health.status, 503, '/health answers 503');
      t.match(JSON.parse(health.body), { status: 'failed', engine: 'mediasoup', reason: new RegExp(`mediasoup worker ${pids[0]} died`) }, 'and says which worker died');
      t.equal(await exited, 1, 'the SFU exits 1 (the unit has Restart=on-failure)');
      t.match(lab.logOf('sfu-short-ttl'), /"event":"engine-failed"/, 'it logs engine-failed');
    });
  }
}

for (const engine of ENGINE_NAMES) await tap.test(`engine: ${engine}`, (t) => suite(t, engine));
