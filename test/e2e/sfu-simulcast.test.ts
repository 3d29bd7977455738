// Simulcast through the mediasoup SFU, with real headless Chromiums, real coturn, the real gateway
// behind the HTTPS front. A publisher's fake camera plays a 1280x720 file (Chrome sends at most
// two layers from the default 640x480), so it publishes three layers (l0 320x180, l1 640x360,
// l2 1280x720). Two receive-only subscribers: ann in the client namespace, ben in a second
// client namespace whose link is shaped with tc tbf (netem is not in this kernel). Proves:
//   - the client publishes three RID layers because the SFU's `joined` says it forwards simulcast;
//   - the publisher gets bandwidth feedback (its offer in the SFU's header-extension ids): its
//     estimate is held at the SFU's publisher_bitrate;
//   - mediasoup picks a layer per subscriber from its bandwidth estimate: ann (unshaped) decodes
//     the top layer while ben (400 kbit/s) decodes a lower one — and keeps decoding;
//   - `preferred-layer` (docs/protocol.md) caps what a subscriber gets and lifts the cap again;
//   - loss on either leg is recovered by NACK and RTX (the SFU's counters and Chrome's agree);
//   - a room outgrowing a worker: ben lands on the SFU's second mediasoup worker (one consumer per
//     worker here), so what he gets is the simulcast producer piped there (pipeToRouter), with its
//     layers — his layer choice works across the pipe;
//   - a publisher with two simulcast video tracks (same RIDs in one transport, told apart by MID):
//     each is forwarded with its own layers, and preferred-layer moves both.
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { joinDemo, launchInNetns, mediaStats, waitEvent, writeY4m } from '../helpers/browser.ts';
import { CHROMIUM, NetnsLab, TURNSERVER, requireTool } from '../helpers/sfu-netns.ts';
import { until } from '../helpers/poll.ts';

requireTool(TURNSERVER, 'coturn');
requireTool(CHROMIUM, 'chromium');

const lab = new NetnsLab();
t.teardown(() => lab.destroy());
lab.up();
const { topo } = lab;
const { ns, addr } = topo;
const shaped = lab.addClient();
lab.startCoturn();
// publisher_bitrate: the SFU's cap on what a publisher may send (its bandwidth feedback) must
// leave room for three layers (1.45 Mbit/s).
const CAP = 2_000_000;
// Two workers, one consumer each before a room spills: pat and ann share the first, ben goes to
// the second and receives pat's producers through a pipe.
const sfu = lab.startSfu('sfu', { signalPort: 30001, mediaPorts: [20000, 20499], engine: 'mediasoup', workers: 2, config: { publisher_bitrate: CAP, mediasoup_consumers_per_worker: 1 } });
const front = await lab.startWebFront([sfu]);

const camera = join(topo.dir, 'camera-1280x720.y4m');
writeY4m(camera, 1280, 720, 30);
const resolve = { [front.host]: addr.turnPublic };
const here: Browser = await launchInNetns(join(topo.dir, 'browser'), ns.client, { ca: front.ca, resolve, args: [`--use-file-for-fake-video-capture=${camera}`] });
t.teardown(() => here.close());
const there: Browser = await launchInNetns(join(topo.dir, 'browser-shaped'), shaped.ns, { ca: front.ca, resolve });
t.teardown(() => there.close());

// What is sent to ben: 400 kbit/s with a bucket of about one packet (a burst above the rate
// queues, as on a real bottleneck, instead of passing at line rate) and a 300 ms queue (tbf drops
// beyond it).
execFileSync('ip', ['netns', 'exec', ns.turn, 'tc', 'qdisc', 'add', 'dev', shaped.turnDev, 'root', 'tbf', 'rate', '400kbit', 'burst', '2kb', 'latency', '300ms']);

async function participant(browser: Browser, name: string, extra: Record<string, string>): Promise<{ page: Page; peerId: string }> {
  const { page, joined } = await joinDemo(browser, front.url, { room: 'layers', token: await lab.token(name, true), name, ...extra }, { log: (l) => t.comment(l) });
  return { page, peerId: String(joined.detail.peerId) };
}

/** The publisher's layers as Chrome reports them (outbound-rtp per RID). */
function layersSent(page: Page): Promise<{ rid: string; frameWidth: number; framesEncoded: number; limit: string; fps: number }[]> {
  return page.evaluate(async () => {
    const report = await ((window as any).oramaDemo.call.pc as RTCPeerConnection).getStats();
    return ([...report.values()] as any[])
      .filter((s) => s.type === 'outbound-rtp' && s.kind === 'video')
      .map((s) => ({ rid: s.rid ?? '', frameWidth: s.frameWidth ?? 0, framesEncoded: s.framesEncoded ?? 0, limit: s.qualityLimitationReason ?? '', fps: s.framesPerSecond ?? 0 }))
      .sort((a, b) => a.rid.localeCompare(b.rid));
  });
}

/** The width of the video a subscriber decodes now (one publisher in the room), and its frames so far. */
async function received(page: Page): Promise<{ width: number; frames: number }> {
  const video = (await mediaStats(page)).videos.find((v) => v.framesDecoded > 0);
  return { width: video?.frameWidth ?? 0, frames: video?.framesDecoded ?? 0 };
}


const pat = await participant(here, 'pat', { camera: '1280x720' });
const ann = await participant(here, 'ann', { publish: '0' });
// ann's consumers exist once her first track is in: only then is the first worker full.
await waitEvent(ann.page, 'track', 0, 30000);
const ben = await participant(there, 'ben', { publish: '0' });

t.test('the room outgrows a worker: ben is on the second one, fed through a pipe', async (t) => {
  await lab.waitLog('sfu', /"event":"room-spilled".*"room":"layers"/, 20000);
  t.pass('the SFU logs the room spilling onto its second worker');
  const consumers = [...lab.curl(ns.turn, `${sfu.url}/metrics`).body.matchAll(/^orama_sfu_worker_consumers\{[^}]*pid="(\d+)"\} (\d+)/gm)].map((m) => Number(m[2]));
  t.equal(consumers.length, 2, 'two workers report their consumers');
  t.ok(consumers.every((c) => c > 0), `each worker forwards to a subscriber: ${consumers.join(', ')} consumers`);
});

t.test('the publisher sends three layers to an SFU that forwards simulcast', async (t) => {
  // Chrome turns a layer on once its bandwidth estimate affords it, the top one last, and says
  // when it holds one back (qualityLimitationReason "bandwidth"): wait until it holds none back.
  const layers = await until('three encoded layers, none held back', 90000, () => layersSent(pat.page), (l) => l.length === 3 && l.every((x) => x.framesEncoded > 0 && x.frameWidth > 0 && x.limit === 'none'));
  t.same(layers.map((l) => l.rid), ['l0', 'l1', 'l2'], 'one outbound stream per RID');
  t.same(layers.map((l) => l.frameWidth), [320, 640, 1280], 'quarter, half and full width');
});

t.test('each subscriber gets the layer its bandwidth affords', async (t) => {
  // The SFU's estimates settle (a new top layer may reach ben before his estimate says it does
  // not fit), then both are watched side by side for 15 s. mediasoup tries a higher layer now
  // and then when a subscriber's estimate grows, and steps back on loss: what the subscriber gets
  // most of the time (the median) is what counts — the top for ann, a lower layer for ben.
  const settled = await until('ann at the top while ben is below it', 90000, async () => [await received(ann.page), await received(ben.page)], ([a, b]) => a.width === 1280 && b.width > 0 && b.width < 1280);
  t.pass(`settled: ann ${settled[0].width} wide, ben ${settled[1].width} wide`);
  const first = settled[1];
  const annWidths: number[] = [];
  const benWidths: number[] = [];
  for (let i = 0; i < 15; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    annWidths.push((await received(ann.page)).width);
    benWidths.push((await received(ben.page)).width);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  t.ok(median(benWidths) < 1280 && benWidths.every((w) => w > 0), `ben (400 kbit/s) decodes a lower layer most of the time: widths ${benWidths.join(' ')}`);
  t.equal(median(annWidths), 1280, `ann decodes the top layer meanwhile: widths ${annWidths.join(' ')}`);
  const last = await received(ben.page);
  t.ok(last.frames > first.frames, `ben keeps decoding (${first.frames} → ${last.frames} frames)`);
  t.comment(`the publisher's layers: ${JSON.stringify(await layersSent(pat.page))}`);
});

t.test('preferred-layer caps what a subscriber gets, and lifts the cap', async (t) => {
  await ann.page.evaluate((id) => (window as any).oramaDemo.call.preferLayer(id, 0), pat.peerId);
  await until('ann at the lowest layer', 30000, () => received(ann.page), (r) => r.width === 320);
  t.pass('preferred-layer 0: ann decodes the lowest layer (320 wide)');
  await ann.page.evaluate((id) => (window as any).oramaDemo.call.preferLayer(id, 2), pat.peerId);
  await until('ann back at the top', 60000, () => received(ann.page), (r) => r.width === 1280);
  t.pass('preferred-layer 2: ann decodes the top layer again');
});

t.test('loss on both legs: NACK and RTX recover it (publisher → SFU and SFU → subscriber)', async (t) => {
  // Loss made in the turn namespace by the kernel (iptables' statistic match: netem is not in
  // this kernel), on what arrives there: 3 % of the UDP from the client namespace (pat's media on
  // its way to the SFU) and from the SFU (ann's and ben's media on their way out). Not on OUTPUT:
  // a packet netfilter drops there fails coturn's sendto with EPERM, and coturn gives up the
  // allocation — a fault, not loss.
  const rules = [['-s', addr.client], ['-s', addr.sfu]].map((src) => ['INPUT', '-p', 'udp', ...src, '-m', 'statistic', '--mode', 'random', '--probability', '0.03', '-j', 'DROP']);
  const iptables = (op: string, rule: string[]) => execFileSync('ip', ['netns', 'exec', ns.turn, 'iptables', op, ...rule]);
  const scrape = () => {
    const body = lab.curl(ns.turn, `${sfu.url}/metrics`).body;
    const value = (re: RegExp) => Number(body.match(re)?.[1] ?? NaN);
    return {
      nacksToPublishers: value(/^orama_sfu_nacks_total\{[^}]*direction="to_publishers"\} (\d+)/m),
      repaired: value(/^orama_sfu_rtp_packets_repaired_total\{[^}]*\} (\d+)/m),
      nacksFromSubscribers: value(/^orama_sfu_nacks_total\{[^}]*direction="from_subscribers"\} (\d+)/m),
      retransmitted: value(/^orama_sfu_rtp_packets_retransmitted_total\{[^}]*\} (\d+)/m),
    };
  };
  const chrome = async () => ({
    annNacks: await ann.page.evaluate(async () => ([...(await ((window as any).oramaDemo.call.pc as RTCPeerConnection).getStats()).values()] as any[]).filter((s) => s.type === 'inbound-rtp' && s.kind === 'video').reduce((n, s) => n + (s.nackCount ?? 0), 0)),
    patResent: await pat.page.evaluate(async () => ([...(await ((window as any).oramaDemo.call.pc as RTCPeerConnection).getStats()).values()] as any[]).filter((s) => s.type === 'outbound-rtp' && s.kind === 'video').reduce((n, s) => n + (s.retransmittedPacketsSent ?? 0), 0)),
  });
  const before = { ...scrape(), ...(await chrome()), frames: (await received(ann.page)).frames };
  for (const rule of rules) iptables('-A', rule);
  try {
    await new Promise((r) => setTimeout(r, 8000));
  } finally {
    for (const rule of rules) iptables('-D', rule);
  }
  const after = { ...scrape(), ...(await chrome()), frames: (await received(ann.page)).frames };
  t.comment(`before ${JSON.stringify(before)}; after 8 s of loss ${JSON.stringify(after)}`);
  t.ok(after.nacksToPublishers > before.nacksToPublishers, `the SFU NACKed the publisher (${before.nacksToPublishers} → ${after.nacksToPublishers})`);
  t.ok(after.patResent > before.patResent, `the publisher's Chrome retransmitted (${before.patResent} → ${after.patResent} packets)`);
  t.ok(after.repaired > before.repaired, `the SFU recovered lost packets by RTX (${before.repaired} → ${after.repaired})`);
  t.ok(after.annNacks > before.annNacks, `ann's Chrome NACKed the SFU (${before.annNacks} → ${after.annNacks})`);
  t.ok(after.nacksFromSubscribers > before.nacksFromSubscribers, `the SFU got the subscribers' NACKs (${before.nacksFromSubscribers} → ${after.nacksFromSubscribers})`);
  t.ok(after.retransmitted > before.retransmitted, `… and retransmitted (${before.retransmitted} → ${after.retransmitted} packets)`);
  t.ok(after.frames > before.frames, `ann kept decoding through the loss (${before.frames} → ${after.frames} frames)`);
});

t.test('the publisher gets bandwidth feedback: its estimate is held at the SFU\'s publisher_bitrate', async (t) => {
  // The client offered its header extensions in the SFU's ids (joined.header_extensions), so the
  // SFU keeps transport-cc and answers with feedback capped at publisher_bitrate (2 Mbit/s here,
  // above the three layers' 1.45 Mbit/s). Without feedback Chrome's estimate only ramps on
  // (measured before the fix: 3.1 Mbit/s 32 s after joining, 6.7 at 40 s); this runs some 30 s
  // after pat joined.
  const estimate = () => pat.page.evaluate(async () => {
    const report = await ((window as any).oramaDemo.call.pc as RTCPeerConnection).getStats();
    return ([...report.values()] as any[]).find((s) => s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate)?.availableOutgoingBitrate ?? 0;
  });
  const held: number[] = [];
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    held.push(await estimate());
  }
  t.ok(held.every((e) => e >= 1_200_000 && e <= CAP * 1.05), `between the three layers' need and ${CAP / 1e6} Mbit/s: ${held.map((e) => (e / 1e6).toFixed(2)).join(' ')} Mbit/s`);
});

t.test('a publisher with two simulcast video tracks: each is forwarded with its own layers', async (t) => {
  // Both tracks use the RIDs l0, l1, l2 in one transport; the SFU tells their packets apart by
  // MID. pat leaves first (the machine's two cores encode one publisher's layers at a time).
  await pat.page.evaluate(() => (window as any).oramaDemo.call.leave());
  const sam = await participant(here, 'sam', { camera: '1280x720', cameras: '2' });
  // Two tracks' layers need 2.9 Mbit/s, above the SFU's 2 Mbit/s publisher_bitrate: Chrome holds
  // each track's top layer back (qualityLimitationReason "bandwidth") and sends the two below it.
  const sent = await until('two tracks, each sending at least two layers', 90000, () => layersByMid(sam.page, 'outbound-rtp'), (l) => Object.keys(l).length === 2 && Object.values(l).every((x) => x.length === 3 && x.filter((y) => y.frames > 0).length >= 2));
  t.same(Object.values(sent).map((l) => l.map((x) => x.rid).sort()), [['l0', 'l1', 'l2'], ['l0', 'l1', 'l2']], 'the same three RIDs on each of two m-lines');
  t.comment(`sam's layers by MID: ${JSON.stringify(sent)}`);
  // What a subscriber decodes now: the widths of the video streams whose frame counts grow over a
  // second (pat's old ones stand still).
  const decoding = (page: Page) => async () => {
    const a = await layersByMid(page, 'inbound-rtp');
    await new Promise((r) => setTimeout(r, 1000));
    const b = await layersByMid(page, 'inbound-rtp');
    return Object.entries(b).filter(([mid, [x]]) => x.frames > (a[mid]?.[0]?.frames ?? 0)).map(([, [x]]) => x.width);
  };
  const live = decoding(ann.page);
  // Her estimate affords the best layer sam sends: each track's own layer above the lowest.
  t.pass(`ann decodes both above the lowest layer: ${(await until('ann decoding two videos from sam, above the lowest layer', 60000, live, (w) => w.length === 2 && w.every((x) => x > 320))).join(' and ')} wide`);
  await ann.page.evaluate((id) => (window as any).oramaDemo.call.preferLayer(id, 0), sam.peerId);
  await until('both of sam\'s videos at the lowest layer for ann', 30000, live, (w) => w.length === 2 && w.every((x) => x === 320));
  t.pass('preferred-layer 0 moves both tracks to their lowest layer (320 wide)');
  await ann.page.evaluate((id) => (window as any).oramaDemo.call.preferLayer(id, 2), sam.peerId);
  const up = await until('both of sam\'s videos above the lowest layer again', 60000, live, (w) => w.length === 2 && w.every((x) => x > 320));
  t.pass(`preferred-layer 2 lifts both again: ${up.join(' and ')} wide`);
  const benWidths = await until('ben decoding sam through the pipe', 60000, decoding(ben.page), (w) => w.length === 2);
  t.ok(benWidths.every((w) => w > 0), `ben, on the second worker, decodes both of sam's tracks (${benWidths.join(' and ')} wide)`);
});

/** Video RTP streams by MID (outbound: one per RID; inbound: one), with RID, frames and width. */
function layersByMid(page: Page, type: 'outbound-rtp' | 'inbound-rtp'): Promise<Record<string, { rid: string; frames: number; width: number }[]>> {
  return page.evaluate(async (type) => {
    const report = await ((window as any).oramaDemo.call.pc as RTCPeerConnection).getStats();
    const out: Record<string, { rid: string; frames: number; width: number }[]> = {};
    for (const s of report.values() as Iterable<any>) {
      if (s.type !== type || s.kind !== 'video') continue;
      (out[s.mid ?? '?'] ??= []).push({ rid: s.rid ?? '', frames: (type === 'outbound-rtp' ? s.framesEncoded : s.framesDecoded) ?? 0, width: s.frameWidth ?? 0 });
    }
    return out;
  }, type);
}
