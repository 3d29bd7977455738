// Publisher churn against one staying subscriber, with real peers (@roamhq/wrtc = libwebrtc, real
// VP8 + Opus) relayed by coturn in network namespaces (test/helpers/sfu-netns.ts; root, coturn).
// Ten publishers join and leave one by one. Each time, the subscriber must decode video and
// hear audio from the newest publisher (ontrack with the new msid stream id), and the m-lines of
// its connection must stay bounded: the SFU recycles the m-lines of stopped tracks instead of
// adding two more per publisher (issue #14).
import t from 'tap';
import { NetnsLab, TURNSERVER, requireTool } from '../helpers/sfu-netns.ts';
import { PeerProcess, type PeerEvent } from '../helpers/sfu-peer-process.ts';

requireTool(TURNSERVER, 'coturn');

const PUBLISHERS = 10;
/** Tracks the subscriber receives at once (one publisher: audio + video). */
const MAX_SIMULTANEOUS = 2;
/** Its own m-line (the data channel) and one of slack. */
const BOUND = MAX_SIMULTANEOUS + 2;

const lab = new NetnsLab();
t.teardown(() => lab.destroy());
lab.up();
const { ns, addr } = lab.topo;
lab.startCoturn();
const sfu = lab.startSfu('sfu', { signalPort: 30001, mediaPorts: [20000, 20499], engine: 'werift' });
const gw = await lab.startGateway(8080, [`${addr.sfu}:30001`]);
await lab.waitHttp(ns.turn, `${sfu.url}/health`, 30000);
await lab.waitLog('gateway-8080', /listening/, 30000);

const peers: PeerProcess[] = [];
t.teardown(async () => {
  for (const p of peers) await p.leave();
});
const peer = async (name: string, options: Record<string, unknown>) => {
  const p = new PeerProcess(lab, ns.client, name, { gateway: gw.url, token: await lab.token(name, true), room: 'churn', ...options });
  peers.push(p);
  return p;
};
type Sdp = { mlines: number; activeMlines: number; transceivers: number };
type Received = Record<string, { frames: number; audioFrames: number; audioEnergy: number }>;

t.test(`${PUBLISHERS} publishers churn; the subscriber's m-lines stay bounded and it gets the newest one's media`, async (t) => {
  const sub = await peer('sub', {});
  await sub.waitFor('joined');
  await sub.waitFor('pc-state', (e) => e.state === 'connected', 20000);
  const curve: number[] = [];
  let last: PeerEvent | undefined;
  let lastPublisher = '';
  // Each publisher's process starts (held) while the one before it streams: start-up is not churn.
  const publisher = (i: number) => peer(`pub${i}`, { publish: true, width: 160, height: 120, fps: 10, hold: true });
  let next = await publisher(0);
  for (let i = 0; i < PUBLISHERS; i++) {
    const pub = next;
    await pub.command('join', {}, 'joining');
    const joined = await pub.waitFor('joined');
    if (i + 1 < PUBLISHERS) next = await publisher(i + 1);
    lastPublisher = joined.peer_id as string;
    // Video decoded and audio heard from THIS publisher, attributed by its msid stream id.
    await sub.waitFor('first-frame', (e) => e.from === lastPublisher, 20000);
    last = await sub.waitStats((s) => ((s.received as Received)[lastPublisher]?.audioFrames ?? 0) > 10, 10000);
    const sdp = last.sdp as Sdp;
    curve.push(sdp.mlines);
    t.ok(sdp.mlines <= BOUND, `publisher ${i + 1}: ${sdp.mlines} m-lines on the subscriber's connection (bound ${BOUND})`);
    if (i === PUBLISHERS - 1) break;
    await pub.leave();
    await sub.waitFor('peer-left', (e) => e.peer_id === lastPublisher, 10000);
    // The SFU's offer stopping the publisher's tracks has been answered.
    await sub.waitStats((s) => (s.sdp as Sdp).activeMlines === 1, 10000);
  }
  t.comment(`m-lines after each publisher joined: ${curve.join(' ')}; libwebrtc transceivers at the end: ${(last!.sdp as Sdp).transceivers}`);
  t.ok((last!.sdp as Sdp).transceivers <= BOUND, 'the subscriber holds no more transceivers than m-lines');
  const tracks = sub.events.filter((e) => e.event === 'track');
  t.equal(new Set(tracks.map((e) => e.from)).size, PUBLISHERS, 'ontrack fired with each publisher\'s stream id');
  t.same(sub.events.filter((e) => ['negotiation-error', 'error'].includes(e.event)), [], 'no negotiation or signaling error on the subscriber');
  const rx = (last!.received as Received)[lastPublisher];
  t.ok(rx.frames > 0 && rx.audioEnergy > 0, `the newest publisher's video (${rx.frames} frames) and non-silent audio reach the subscriber`);
  const after = await sub.waitStats((s) => (s.received as Received)[lastPublisher].frames >= rx.frames + 10, 10000).catch(() => undefined);
  t.ok(after, `and keep coming (${after ? (after.received as Received)[lastPublisher].frames : 'stuck at ' + rx.frames} frames)`);
  t.ok(Math.max(...curve) <= BOUND, `never more than ${BOUND} m-lines (max ${Math.max(...curve)})`);
  t.equal(lab.metric(ns.turn, sfu.url, 'orama_sfu_subscriptions'), MAX_SIMULTANEOUS, 'the SFU forwards exactly the newest publisher\'s two tracks');
});
