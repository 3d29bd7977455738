// npm run bench:faults — how long a call is without video when its room's SFU goes away, through
// the real product path on the test cluster: two headless Chromiums (a netns that reaches only the
// nodes' public addresses; one pinned to node1's front, one to node3's) in a room of namespace
// `faultbench`, HTTPS front → gateway → SFU, media relayed by coturn. Each round applies one
// fault to the node holding the room's SFU and measures, in each browser, the time from the fault
// to the first video frame decoded on the new connection, split into where the time goes:
//   detect  fault → the client starts reconnecting (signaling closed, or server-draining)
//   rejoin  → the SFU confirmed the join (credentials, gateway placement, WS to the new SFU)
//   ice     → the new peer connection is connected (TURN allocation, ICE, DTLS)
//   frame   → the first frame of the other's video is decoded (renegotiation, keyframe)
// Faults: sfu-kill (SIGKILL of the SFU process; systemd restarts it), sfu-stop (systemctl stop:
// SIGTERM, clients get server-draining). Rounds alternate the faults (BENCH_FAULTS_ROUNDS each,
// default 3; BENCH_FAULTS=sfu-kill,sfu-stop). Goal: video back within 3 s. Bounded: every wait
// has a deadline. Needs root (netns) and the cluster (started if down). Leaves the namespace
// enabled for a re-run (`orama namespace disable webrtc --namespace faultbench` removes it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { sshExec } from '../src/cluster/cluster.ts';
import { unitName } from '../src/webrtc/names.ts';
import { clientNetns, clusterSuite } from '../test/helpers/cluster-suite.ts';
import { launchInNetns, waitEvent, waitMedia } from '../test/helpers/browser.ts';
import { frontCa, frontOf } from '../test/helpers/front.ts';

const NS = process.env.BENCH_FAULTS_NS ?? 'faultbench';
const ROUNDS = Number(process.env.BENCH_FAULTS_ROUNDS ?? 3);
const FAULTS = (process.env.BENCH_FAULTS ?? 'sfu-kill,sfu-stop').split(',');
const ROOM = 'bench';
const DEADLINE_MS = 60_000;

type Sample = { t: number; gen: number; f: number };
type Ev = { type: string; t: number; detail: Record<string, unknown> };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN; };

/** In the page: every 50 ms, the frames decoded on the current peer connection and its generation. */
async function watchFrames(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as any;
    if (w.__frames) return;
    const samples: { t: number; gen: number; f: number }[] = (w.__frames = []);
    let gen = 0;
    let last: RTCPeerConnection | null = null;
    setInterval(async () => {
      const pc: RTCPeerConnection | undefined = w.oramaDemo.call?.pc;
      if (!pc) return;
      if (pc !== last) { gen++; last = pc; }
      const g = gen;
      try {
        let f = 0;
        for (const s of (await pc.getStats()).values() as any) if (s.type === 'inbound-rtp' && s.kind === 'video') f += s.framesDecoded ?? 0;
        samples.push({ t: Date.now(), gen: g, f });
        if (samples.length > 6000) samples.splice(0, 2000);
      } catch { /* closed */ }
    }, 50);
  });
}

const framesSince = (page: Page, t0: number) => page.evaluate((t0) => ((window as any).__frames as Sample[]).filter((s) => s.t >= t0), t0);
const eventsSince = (page: Page, t0: number) => page.evaluate((t0) => ((window as any).oramaDemo.events as Ev[]).filter((e) => e.t >= t0), t0);

/** Video flows: frames on the current connection rose within the last second. */
async function flowing(page: Page): Promise<boolean> {
  const s = await framesSince(page, Date.now() - 1000);
  return s.length > 2 && s[s.length - 1].f > s[0].f && s[0].gen === s[s.length - 1].gen;
}

interface Result { back: number; detect: number; rejoin: number; ice: number; frame: number }

/** After fault time t0: when video came back on a new connection, and the steps on the way. */
async function recovery(page: Page, t0: number, gen0: number): Promise<Result> {
  const until = Date.now() + DEADLINE_MS;
  while (Date.now() < until) {
    const s = await framesSince(page, t0);
    const back = s.find((x) => x.gen > gen0 && x.f > 0);
    if (back) {
      const ev = await eventsSince(page, t0);
      if (process.env.BENCH_FAULTS_TRACE) {
        const sig = await page.evaluate((t0) => ((window as any).__sig as Ev[]).filter((e) => e.t >= t0), t0) as unknown as { t: number; dir: string; type: string }[];
        const lines = [...ev.map((e) => ({ t: e.t, s: `${e.type} ${JSON.stringify(e.detail).slice(0, 80)}` })), ...sig.map((e) => ({ t: e.t, s: `ws ${e.dir} ${e.type}` }))];
        console.log(lines.sort((a, b) => a.t - b.t).map((l) => `  +${l.t - t0} ${l.s}`).join('\n'));
      }
      const at = (type: string, pred: (e: Ev) => boolean = () => true) => ev.find((e) => e.type === type && pred(e))?.t ?? NaN;
      const detect = Math.min(...[at('reconnecting'), at('draining')].filter((x) => !Number.isNaN(x)));
      const rejoin = at('joined');
      const ice = at('state', (e) => e.detail.connection === 'connected' && e.t >= rejoin);
      return { back: back.t - t0, detect: detect - t0, rejoin: rejoin - detect, ice: ice - rejoin, frame: back.t - ice };
    }
    await sleep(100);
  }
  const ev = await eventsSince(page, t0);
  const sig = await page.evaluate((t0) => ((window as any).__sig as Ev[]).filter((e) => e.t >= t0), t0) as unknown as { t: number; dir: string; type: string }[];
  const lines = [...ev.map((e) => ({ t: e.t, s: `${e.type} ${JSON.stringify(e.detail).slice(0, 80)}` })), ...sig.filter((e) => e.type !== 'ice-candidate').map((e) => ({ t: e.t, s: `ws ${e.dir} ${e.type}` }))];
  const inbound = await page.evaluate(async () => {
    const pc: RTCPeerConnection = (window as any).oramaDemo.call.pc;
    return [...(await pc.getStats()).values()].filter((s: any) => s.type === 'inbound-rtp' || s.type === 'transport' || s.type === 'candidate-pair' && s.nominated)
      .map((s: any) => JSON.stringify({ type: s.type, kind: s.kind, ssrc: s.ssrc, packets: s.packetsReceived, frames: s.framesReceived, decoded: s.framesDecoded, pli: s.pliCount, nack: s.nackCount, dtls: s.dtlsState, ice: s.iceState, state: s.state, bytes: s.bytesReceived }));
  });
  throw new Error(`video did not come back within ${DEADLINE_MS} ms:\n${inbound.join('\n')}\n${lines.sort((a, b) => a.t - b.t).map((l) => `  +${l.t - t0} ${l.s}`).join('\n')}`);
}

const { cluster, orama, base } = await clusterSuite();
if (base.code !== 0) throw new Error(`node-base failed:\n${base.out.slice(-2000)}`);
const enable = await orama('namespace', 'enable', 'webrtc', '--namespace', NS);
if (enable.code !== 0) throw new Error(`enable failed:\n${enable.out.slice(-2000)}`);
const status = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout);
const token = (await orama('token', 'mint', '--namespace', NS, '--subject', 'bench', '--owner')).stdout.trim();
const ca = frontCa(cluster.inventory);
const front = frontOf(ca, status.url);
const host = new URL(status.url).hostname;
const net = clientNetns(cluster, 'ofault', 66);
const profile = mkdtempSync(join(tmpdir(), 'ofault-'));
const browsers = [
  await launchInNetns(join(profile, 'a'), net.netns, { ca, resolve: { [host]: status.nodes[0].public_ip } }),
  await launchInNetns(join(profile, 'b'), net.netns, { ca, resolve: { [host]: status.nodes[2].public_ip } }),
];
const rows: { fault: string; round: number; node: string; name: string; r: Result }[] = [];
try {
  const pages: [string, Page][] = [];
  for (const [name, browser] of [['ada', browsers[0]], ['bob', browsers[1]]] as const) {
    const page = await (await browser.newContext()).newPage();
    // Signaling as the client sees it, with times (for the trace).
    await page.addInitScript(() => {
      const sig: { t: number; dir: string; type: string }[] = ((window as any).__sig = []);
      const Native = window.WebSocket;
      (window as any).WebSocket = class extends Native {
        constructor(url: string | URL, protocols?: string | string[]) {
          super(url, protocols);
          this.addEventListener('message', (e) => {
            try {
              const m = JSON.parse(String(e.data));
              const extra = m.sdp ? ` (${(m.sdp.match(/^a=candidate:/gm) ?? []).length} candidates)` : m.type === 'ice-candidate' ? ` ${m.candidate?.candidate?.split(' ').slice(4, 6).join(':') ?? 'end'}` : '';
              sig.push({ t: Date.now(), dir: 'in', type: m.type + extra });
            } catch { /* binary */ }
          });
          this.addEventListener('close', (e) => sig.push({ t: Date.now(), dir: 'in', type: `close ${e.code} ${e.reason}` }));
        }
        send(data: any) { try { sig.push({ t: Date.now(), dir: 'out', type: JSON.parse(String(data)).type }); } catch { /* binary */ } super.send(data); }
      };
    });
    await page.goto(`${status.url}/v1/webrtc/client/demo.html#${new URLSearchParams({ room: ROOM, token, name, autojoin: '1' })}`);
    await waitEvent(page, 'joined', 0, 30000);
    pages.push([name, page]);
  }
  for (const [, page] of pages) { await waitMedia(page, 1, 30000); await watchFrames(page); }

  const roomNode = async (): Promise<string> => {
    const r = await front(status.nodes[0].public_ip, '/v1/webrtc/rooms', { headers: { authorization: `Bearer ${token}` } });
    return r.json().rooms.find((x: any) => x.room_id === ROOM).sfu_node;
  };
  const unit = unitName('sfu', NS);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const fault of FAULTS) {
      // Steady first: both browsers decode, every SFU serves.
      const steadyBy = Date.now() + DEADLINE_MS;
      for (;;) {
        const ok = (await Promise.all(pages.map(([, p]) => flowing(p)))).every(Boolean);
        const active = await Promise.all([1, 2, 3].map((n) => sshExec(`node${n}`, `systemctl is-active ${unit}`).then((r) => r.stdout.trim())));
        if (ok && active.every((a) => a === 'active')) break;
        if (Date.now() > steadyBy) throw new Error(`no steady call before ${fault} round ${round} (SFUs: ${active})`);
        await sleep(500);
      }
      await sleep(2000);
      const node = await roomNode();
      const gens = await Promise.all(pages.map(([, p]) => p.evaluate(() => { const s = (window as any).__frames; return s[s.length - 1].gen; })));
      // The fault's time is the node's clock just before it (the nodes share this host's kernel
      // clock, and so do the browsers): ssh's own latency is not counted.
      const command = fault === 'sfu-kill' ? `systemctl kill -s KILL ${unit}` : fault === 'sfu-stop' ? `systemctl stop --no-block ${unit}` : null;
      if (!command) throw new Error(`unknown fault ${fault} (sfu-kill, sfu-stop)`);
      const t0 = Number((await sshExec(node, `date +%s%3N; ${command}`)).stdout.trim().split('\n')[0]);
      const results = await Promise.all(pages.map(([, p], i) => recovery(p, t0, gens[i])));
      results.forEach((r, i) => rows.push({ fault, round, node, name: pages[i][0], r }));
      const fmt = (r: Result) => `${r.back} ms (detect ${r.detect}, rejoin ${r.rejoin}, ice ${r.ice}, frame ${r.frame})`;
      console.log(`${fault} round ${round} on ${node}: ${pages.map(([n], i) => `${n} ${fmt(results[i])}`).join('; ')}`);
      if (fault === 'sfu-stop') {
        // The unit drains before it stops; start it again once it has.
        for (let i = 0; i < 120 && (await sshExec(node, `systemctl is-active ${unit}`)).stdout.trim() !== 'inactive'; i++) await sleep(500);
        await sshExec(node, `systemctl start ${unit}`);
      }
    }
  }
} finally {
  for (const b of browsers) await b.close();
  rmSync(profile, { recursive: true, force: true });
  net.remove();
}

const cols = ['back', 'detect', 'rejoin', 'ice', 'frame'] as const;
console.log(`\n| fault | video back in both (median, range) | ${cols.slice(1).map((c) => `${c} (median)`).join(' | ')} | rounds |`);
console.log(`|---|---|${cols.slice(1).map(() => '---').join('|')}|---|`);
for (const fault of FAULTS) {
  const rs = rows.filter((x) => x.fault === fault);
  const perRound = [...new Set(rs.map((x) => x.round))].map((round) => Math.max(...rs.filter((x) => x.round === round).map((x) => x.r.back)));
  console.log(`| ${fault} | ${median(perRound)} ms (${Math.min(...perRound)}–${Math.max(...perRound)}) | ${cols.slice(1).map((c) => `${median(rs.map((x) => x.r[c]))} ms`).join(' | ')} | ${perRound.length} |`);
}
const worst = Math.max(...rows.map((x) => x.r.back));
console.log(`\ngoal: video back within 3000 ms; worst seen ${worst} ms: ${worst <= 3000 ? 'met' : 'NOT met'}`);
