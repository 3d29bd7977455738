// Real headless Debian Chromium (fake camera + microphone) running INSIDE the client network
// namespace, the demo page + browser client, real coturn, two SFU processes in the SFU namespace
// and the real gateway (JWT auth, credentials, room affinity, signaling proxy, the client and demo
// page it serves) behind the HTTPS front (Caddy with the nodes' Caddyfile) in the coturn namespace.
// Proves: 2 and 3 browsers see and hear each other and exchange data-channel messages, every
// selected candidate pair is relay, refresh-credentials arrives before expiry, and SIGTERM of
// the SFU moves every browser to the second SFU — which runs the other engine, werift, so the three
// browsers then call each other through werift. The first SFU runs the default, mediasoup.
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { joinDemo, launchInNetns, waitEvent, waitMedia, sendChat, waitChat, type DemoEvent } from '../helpers/browser.ts';
import t from 'tap';
import { CHROMIUM, NetnsLab, TURNSERVER, requireTool } from '../helpers/sfu-netns.ts';

requireTool(TURNSERVER, 'coturn');
requireTool(CHROMIUM, 'chromium');


const lab = new NetnsLab();
t.teardown(() => lab.destroy());
lab.up();
const { topo } = lab;
const { ns, addr } = topo;
lab.startCoturn();
const sfu1 = lab.startSfu('sfu1', { signalPort: 30001, mediaPorts: [20000, 20499], ttl: 8, drainDeadlineS: 5 });
// The second SFU runs the other engine, werift: the browsers moved to it by the SIGTERM test make
// the browser call on that engine (audio, video, data channel, relay-only).
/** The suites mediasoup's worker offers in DTLS-SRTP (all four tested in mediasoup-srtp.test.ts); Chrome prefixes SRTP_. */
const SRTP_SUITES = ['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];
const sfu2 = lab.startSfu('sfu2', { signalPort: 30002, mediaPorts: [20500, 20999], engine: 'werift' });
// As on the nodes: the gateway behind the HTTPS front; the page is served from
// https://ns-<lab>.orama.test/.
const front = await lab.startWebFront([sfu1, sfu2]);
const gw = { url: front.url };

// Chromium runs in the client namespace (playwright talks to it over a pipe, which ip-netns-exec
// keeps) and trusts the lab's CA through an NSS database, as a person would: no certificate or
// insecure-origin flag. The name resolves to the front as a hosts-file line would.
const browser: Browser = await launchInNetns(join(topo.dir, 'browser'), ns.client, { ca: front.ca, resolve: { [front.host]: addr.turnPublic } });
t.teardown(() => browser.close());

async function participant(name: string, room: string): Promise<Page> {
  // Owner tokens: whoever comes first into the room creates it.
  return (await joinDemo(browser, gw.url, { room, token: await lab.token(name, true), name }, { log: (l) => t.comment(l), timeoutMs: 15000 })).page;
}

const pages: Page[] = [];

t.test('two browsers: video, audio, data channel, relay-only', async (t) => {
  pages.push(await participant('ada', 'call'), await participant('bob', 'call'));
  // The real gateway's affinity: both SFUs healthy and empty → the first by node name (sfu1, whose
  // short credential TTL the refresh test below relies on).
  t.equal(await lab.roomNode('call'), 'sfu-30001', 'the gateway placed the room on sfu1 (fewest rooms, then node name)');
  for (const [i, page] of pages.entries()) {
    const s = await waitMedia(page, 1);
    t.ok(s.videos.some((v) => v.framesDecoded > 0), `browser ${i}: framesDecoded ${s.videos.map((v) => v.framesDecoded)}`);
    t.ok(s.audios.some((a) => a.totalAudioEnergy > 0), `browser ${i}: audio energy ${s.audios.map((a) => a.totalAudioEnergy.toFixed(4))}`);
    t.ok(s.pairs.length > 0 && s.pairs.every((p) => p.startsWith('relay/')), `browser ${i}: selected pairs ${s.pairs}`);
    // The worker's SRTP is our libsrtp2 port: Chrome's media went through it with this suite.
    t.ok(s.srtpCiphers.length > 0 && s.srtpCiphers.every((c) => SRTP_SUITES.includes(c.replace(/^SRTP_/, ''))), `browser ${i}: SRTP through mediasoup with ${s.srtpCiphers}`);
  }
  t.equal(JSON.parse(lab.curl(ns.turn, `${sfu1.url}/health`).body).engine, 'mediasoup', 'the first SFU runs the default engine, mediasoup');
  await sendChat(pages[0], 'hello from ada');
  await waitChat(pages[1], 'hello from ada');
  t.pass('bob got ada\'s data-channel message');
});

t.test('three browsers: everyone sees and hears the two others', async (t) => {
  pages.push(await participant('cy', 'call'));
  for (const [i, page] of pages.entries()) {
    const s = await waitMedia(page, 2, 25000);
    t.ok(s.videos.filter((v) => v.framesDecoded > 0).length >= 2, `browser ${i}: two decoded videos ${s.videos.map((v) => v.framesDecoded)}`);
    t.ok(s.pairs.every((p) => p.startsWith('relay/')), `browser ${i}: relay ${s.pairs}`);
  }
  await sendChat(pages[2], 'cy says hi');
  await waitChat(pages[0], 'cy says hi');
  await waitChat(pages[1], 'cy says hi');
  t.pass('the data-channel message reached both others');
});

t.test('refresh-credentials arrives before the first credentials expire', async (t) => {
  for (const [i, page] of pages.entries()) {
    const first = await waitEvent(page, 'credentials');
    const refresh = await page.waitForFunction(
      () => (window as any).oramaDemo.events.find((e: DemoEvent) => e.type === 'credentials' && e.detail.kind === 'refresh-credentials'),
      undefined,
      { timeout: 12000, polling: 100 },
    );
    const r = (await refresh.jsonValue()) as DemoEvent;
    const expiryMs = Number(String(first.detail.username).split(':')[0]) * 1000;
    t.ok(r.t < expiryMs, `browser ${i}: refresh ${((expiryMs - r.t) / 1000).toFixed(1)} s before expiry`);
    t.not(r.detail.username, first.detail.username);
  }
});

t.test('SIGTERM on the SFU: server-draining, then every browser rejoins the other SFU', async (t) => {
  const before = Date.now();
  const exited = new Promise<number | null>((resolve) => sfu1.proc.once('exit', (code) => resolve(code)));
  process.kill(sfu1.proc.pid!, 'SIGTERM');
  for (const [i, page] of pages.entries()) {
    const draining = await waitEvent(page, 'draining', before, 5000);
    const rejoined = await waitEvent(page, 'reconnected', draining.t, 15000);
    // Order and liveness only (the timing is bench material): rejoined after the drain notice.
    t.ok(rejoined.t >= draining.t, `browser ${i}: rejoined after server-draining (${rejoined.t - draining.t} ms)`);
  }
  t.equal(await lab.roomNode('call'), 'sfu-30002', 'placed on the second SFU (room affinity in the store)');
  t.equal(JSON.parse(lab.curl(ns.turn, `${sfu2.url}/health`).body).engine, 'werift', 'the second SFU runs the other engine, werift');
  for (const [i, page] of pages.entries()) {
    const s = await waitMedia(page, 2, 25000);
    t.ok(s.videos.filter((v) => v.framesDecoded > 0).length >= 2, `browser ${i}: video again after the move (werift)`);
    t.ok(s.audios.filter((a) => a.totalAudioEnergy > 0).length >= 2, `browser ${i}: hears both others`);
    t.ok(s.pairs.length > 0 && s.pairs.every((p) => p.startsWith('relay/')), `browser ${i}: selected pairs ${s.pairs} are relayed`);
  }
  await sendChat(pages[2], 'hello through werift');
  await waitChat(pages[0], 'hello through werift');
  t.pass('a data-channel message crossed the werift SFU');
  t.equal(await exited, 0, 'the drained SFU exited 0');
});
