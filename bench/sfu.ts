// npm run bench:sfu — one publisher (640x480 VP8 + Opus, @roamhq/wrtc with a synthetic camera)
// -> N subscribers (werift, receive-only) through real coturn, in the same network-namespace
// topology as the tests: client netns -> coturn netns -> SFU netns. Both media engines in the
// same run, interleaved (werift, mediasoup, werift, mediasoup, … BENCH_SFU_ROUNDS rounds), each
// SFU pinned to one core (taskset; mediasoup with one worker) with the load generator on the
// others (the publishers are not pinned: on the generator's crowded core their encoders starved
// and sent less as N grew). For each engine and N: time to the first keyframe p50/p95, SFU CPU (from
// /proc/<pid>/stat of the SFU process and its mediasoup worker) per forwarded stream, packet loss
// over a steady window, the extrapolated forwarded streams per core, and the load generator's own
// CPU (when it nears a core, it is the bottleneck, and the row says so), and the SFU's memory
// (RSS of the SFU and its workers) per subscriber, where the time to the first keyframe went, and
// one /metrics scrape's time. Then BENCH_SFU_BROWSERS headless Chromiums join receive-only while
// BENCH_SFU_BROWSERS_WITH swarm subscribers do: time to their first *decoded* frame, with the
// machine's CPU meanwhile. Each step waits until the SFU holds only the publisher again.
// Then M rooms of 4 (BENCH_SFU_ROOMS, default
// 1,2): 4·M @roamhq/wrtc peers, each publishing 320x240 VP8 + Opus and receiving the other three.
// Bounded: N in BENCH_SFU_N (default 1,10,50,100), a fixed hold per step. Appends to
// docs/benchmarks.md under "## SFU". Needs root (netns), coturn.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EngineName } from '../src/sfu/engine.ts';
import { CHROMIUM, NetnsLab, REPO, TSX_NODE, TURNSERVER, requireTool } from '../test/helpers/sfu-netns.ts';
import { PeerProcess } from '../test/helpers/sfu-peer-process.ts';
import { launchInNetns, type DemoEvent } from '../test/helpers/browser.ts';

requireTool(TURNSERVER, 'coturn');
const STEPS = (process.env.BENCH_SFU_N ?? '1,10,50,100').split(',').map(Number);
const HOLD_S = Number(process.env.BENCH_SFU_HOLD_S ?? 10);
const CLK_TCK = 100; // Linux USER_HZ
const LOSS_FREE = 0.001; // "without loss": at most 0.1 % of packets missing after NACK

const ENGINES = (process.env.BENCH_SFU_ENGINES ?? 'werift,mediasoup').split(',') as EngineName[];
const ROUNDS = Number(process.env.BENCH_SFU_ROUNDS ?? 2);
/**
 * The publisher's video is capped here so both engines forward the same load: werift answers
 * with REMB, mediasoup with transport-cc (the publishers offer in the SFU's header-extension ids,
 * as the browser client does), and the two estimates climb differently.
 */
const PUBLISHER_KBPS = Number(process.env.BENCH_SFU_PUBLISHER_KBPS ?? 300);
/** Chromiums (receive-only, one page each) that join while BROWSERS_ALONGSIDE swarm subscribers do. */
const BROWSERS = Number(process.env.BENCH_SFU_BROWSERS ?? 3);
const BROWSERS_ALONGSIDE = Number(process.env.BENCH_SFU_BROWSERS_WITH ?? 50);
if (BROWSERS > 0) requireTool(CHROMIUM, 'chromium');
const ROOMS = (process.env.BENCH_SFU_ROOMS ?? '1,2').split(',').filter(Boolean).map(Number);
const SFU_CPU = cpus().length - 1; // the last core: the SFU's; the generator and coturn get the rest
const GENERATOR_CPUS = Array.from({ length: Math.max(1, SFU_CPU) }, (_, i) => i).join(',');

/** `read` of a process plus of its children (mediasoup's workers); 0 for what has gone. */
function withChildren(pid: number, read: (p: number) => number): number {
  const own = (p: number) => {
    try {
      return read(p);
    } catch {
      return 0;
    }
  };
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {}
  return own(pid) + children.reduce((sum, c) => sum + own(c), 0);
}

/** utime + stime of a process and its children, in ticks (/proc/PID/stat fields 14, 15). */
function cpuTicks(pid: number): number {
  return withChildren(pid, (p) => {
    const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]);
  });
}

/** The whole machine's busy and total CPU ticks so far (/proc/stat: all but idle and iowait). */
function machineTicks(): { busy: number; total: number } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const n = fields.map(Number);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - n[3] - n[4], total };
}

/** Resident memory of a process and its children, in MB. */
function rssMb(pid: number): number {
  return withChildren(pid, (p) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) / 1024);
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Row {
  engine: EngineName;
  round: number;
  generatorCpu: number;
  n: number;
  streams: number;
  joined: number;
  ttffP50: number;
  ttffP95: number;
  sfuCpu: number;
  cpuPerStreamPct: number;
  lossPct: number;
  mbitOut: number;
  streamsPerCore: number;
  /** SFU RSS growth over the publisher-only baseline, per subscriber (MB). */
  mbPerPeer: number;
  /** One GET /metrics during the window, as curl times it (mediasoup asks its worker for each stream's stats). */
  scrapeMs: number;
  /** Where the time to the first keyframe goes: p50 / p95 per step (ms from the credentials request). */
  phases: Record<string, [number, number]>;
}

/** Chromiums joining receive-only while a swarm of subscribers joins: time to the first decoded frame. */
interface BrowserRow {
  engine: EngineName;
  round: number;
  /** Swarm subscribers joining at the same time. */
  alongside: number;
  /** Per browser: ms from the demo's join (credentials request) to its first decoded video frame; null: none in time. */
  firstFrameMs: (number | null)[];
  /** The whole machine's CPU use (both cores) while the pages waited for their first frames. */
  machineBusy: number;
  /** Per browser (ms after its start): the demo's credentials, joined, first video track and `connected`, the first video packet; Chrome's PLI and NACK counts. */
  steps: (Record<string, number | null> | null)[];
}

interface SwarmSubscriber {
  ttffMs: number | null;
  phases: Record<string, number | undefined>;
  video: { expected: number; received: number };
  audio: { expected: number; received: number };
}
const PHASES = ['credentials', 'joined', 'tracksOffer', 'connected', 'firstVideo'];
function phaseSpread(summary: SwarmSubscriber[]): Record<string, [number, number]> {
  const spread: Record<string, [number, number]> = {};
  for (const step of PHASES) {
    const at = summary.map((s) => s.phases?.[step]).filter((x): x is number => typeof x === 'number');
    spread[step] = [percentile(at, 50), percentile(at, 95)];
  }
  return spread;
}

/**
 * Waits (bounded, 60 s) until the SFU holds only the publisher again and answers /health, so the
 * next step does not start against an SFU still tearing the last one down (the gateway's 1 s
 * health probe then fails and joins get 503: seen with werift after 100 subscribers left).
 */
async function settle(lab: NetnsLab, sfuUrl: string, left: number): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < 60000) {
    const health = lab.curl(lab.topo.ns.turn, `${sfuUrl}/health`, ['-m', '1']);
    if (health.status === 200 && lab.metric(lab.topo.ns.turn, sfuUrl, 'orama_sfu_peers') <= 1) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`the SFU settled ${((Date.now() - t0) / 1000).toFixed(1)} s after ${left} subscribers left`);
  await new Promise((r) => setTimeout(r, 2100)); // the gateway's cached health (healthCacheMs, 2 s) catches up
}

/**
 * bench/sfu-swarm.ts in the client netns on the generator's cores: `n` subscribers to room
 * "bench". `onEvent` sees each JSON line as it comes (with the swarm's pid); `done` resolves with
 * the last line of each kind once the swarm has exited (killed if it outlives its bound).
 */
function startSwarm(lab: NetnsLab, gateway: string, tokens: string[], n: number, holdS: number, onEvent: (e: any, pid: number) => void = () => {}): { done: Promise<Record<string, any>> } {
  const swarm = spawn('ip', ['netns', 'exec', lab.topo.ns.client, 'taskset', '-c', GENERATOR_CPUS, ...TSX_NODE, 'bench/sfu-swarm.ts', JSON.stringify({ gateway, tokens, room: 'bench', n, holdS, rampMs: n > 10 ? 20 : 0 })], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const events: Record<string, any> = {};
  const deadline = setTimeout(() => swarm.kill('SIGKILL'), (90 + holdS) * 1000);
  createInterface({ input: swarm.stdout! }).on('line', (line) => {
    let e: any;
    try {
      e = JSON.parse(line);
    } catch {
      return;
    }
    events[e.event] = e;
    onEvent(e, swarm.pid!);
  });
  return {
    done: new Promise((resolve) =>
      swarm.on('exit', () => {
        clearTimeout(deadline);
        resolve(events);
      }),
    ),
  };
}

/** M rooms of 4 publishing peers. */
interface RoomsRow {
  engine: EngineName;
  round: number;
  rooms: number;
  peers: number;
  streams: number;
  connected: number;
  sfuCpu: number;
  cpuPerStreamPct: number;
  lossPct: number;
  mbPerPeer: number;
  generatorCpu: number;
}

const rows: Row[] = [];
const browserRows: BrowserRow[] = [];
const roomRows: RoomsRow[] = [];
const baselines: Record<string, number> = {};
const inbound: Record<string, number> = {};
let current: NetnsLab | undefined;
process.on('SIGINT', () => void current?.destroy().then(() => process.exit(130)));
for (let round = 1; round <= ROUNDS; round++) for (const engine of ENGINES) await runEngine(engine, round);

async function runEngine(engine: EngineName, round: number): Promise<void> {
  console.log(`--- round ${round}: ${engine}`);
  const lab = new NetnsLab();
  current = lab;
  let baselineCpu = 0;
  let baselineRss = 0;
  try {
  lab.up();
  const { ns, addr } = lab.topo;
  lab.startCoturn();
  const sfu = lab.startSfu('sfu', { signalPort: 30001, mediaPorts: [20000, 20499], engine, workers: 1, cpu: SFU_CPU });
  const gw = await lab.startGateway(8080, [`${addr.sfu}:30001`]);
  const token = await lab.token('bench', true); // an owner: the first into a room creates it
  const tokens = await Promise.all(Array.from({ length: Math.max(...STEPS) }, (_, i) => lab.token(`bench-sub-${i}`)));
  await lab.waitHttp(ns.turn, `${sfu.url}/health`, 30000);
  await lab.waitLog('gateway-8080', /listening/);
  const publisher = new PeerProcess(lab, ns.client, 'publisher', { gateway: gw.url, token, room: 'bench', publish: true, width: 640, height: 480, fps: 20, maxVideoBitrate: PUBLISHER_KBPS * 1000, alignExtensions: true });
  await publisher.waitFor('joined');
  await publisher.waitFor('pc-state', (e) => e.state === 'connected', 20000);
  await new Promise((r) => setTimeout(r, 3000)); // let the publisher's bitrate settle
  const refused = publisher.events.find((e) => e.event === 'extmap-refused');
  if (refused) console.log(`the publisher's libwebrtc refused its offer in the SFU's extension ids (${refused.message}): it offered as made`);

  const metric = (name: string) => lab.metric(ns.turn, sfu.url, name);
  // baseline: publisher only
  {
    const c0 = cpuTicks(sfu.proc.pid!);
    const b0 = metric('orama_sfu_rtp_bytes_in_total');
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 5000));
    baselineCpu = (cpuTicks(sfu.proc.pid!) - c0) / CLK_TCK / ((Date.now() - t0) / 1000);
    baselines[`${engine} ${round}`] = baselineCpu;
    baselineRss = rssMb(sfu.proc.pid!);
    inbound[`${engine} ${round}`] = ((metric('orama_sfu_rtp_bytes_in_total') - b0) * 8) / ((Date.now() - t0) / 1000) / 1e6;
    console.log(`baseline: publisher only, SFU CPU ${(baselineCpu * 100).toFixed(1)} % of a core, inbound ${inbound[`${engine} ${round}`].toFixed(2)} Mbit/s`);
  }

  for (const n of STEPS) {
    let cpu0 = 0;
    let gen0 = 0;
    let gen1 = 0;
    let bytes0 = 0;
    let t0 = 0;
    let cpu1 = 0;
    let bytes1 = 0;
    let t1 = 0;
    let rss1 = 0;
    let scrapeMs = NaN;
    const swarm = startSwarm(lab, gw.url, tokens, n, HOLD_S, (e, pid) => {
      if (e.event === 'window-start') {
        scrapeMs = lab.curl(ns.turn, `${sfu.url}/metrics`, ['-m', '10']).ms; // before the window: its CPU is not counted
        gen0 = cpuTicks(pid);
        cpu0 = cpuTicks(sfu.proc.pid!);
        bytes0 = metric('orama_sfu_rtp_bytes_out_total');
        t0 = Date.now();
      }
      if (e.event === 'summary') {
        gen1 = cpuTicks(pid);
        cpu1 = cpuTicks(sfu.proc.pid!);
        bytes1 = metric('orama_sfu_rtp_bytes_out_total');
        t1 = Date.now();
        rss1 = rssMb(sfu.proc.pid!);
      }
    });
    const events = await swarm.done;
    const summary = events.summary?.subscribers as SwarmSubscriber[] | undefined;
    if (!summary || !t1) {
      console.log(`N=${n}: the swarm did not finish (machine saturated?)`);
      break;
    }
    const seconds = (t1 - t0) / 1000;
    const sfuCpu = (cpu1 - cpu0) / CLK_TCK / seconds;
    const ttffs = summary.map((s) => s.ttffMs).filter((x): x is number => x !== null);
    let expected = 0;
    let received = 0;
    for (const s of summary) {
      expected += s.video.expected + s.audio.expected;
      received += Math.min(s.video.received, s.video.expected) + Math.min(s.audio.received, s.audio.expected);
    }
    const streams = 2 * n;
    const row: Row = {
      engine,
      round,
      generatorCpu: (gen1 - gen0) / CLK_TCK / seconds,
      n,
      streams,
      joined: ttffs.length,
      ttffP50: percentile(ttffs, 50),
      ttffP95: percentile(ttffs, 95),
      sfuCpu,
      cpuPerStreamPct: (Math.max(0, sfuCpu - baselineCpu) * 100) / streams,
      lossPct: expected > 0 ? (100 * (expected - received)) / expected : 100,
      mbitOut: ((bytes1 - bytes0) * 8) / seconds / 1e6,
      streamsPerCore: streams / Math.max(0.001, sfuCpu - baselineCpu),
      mbPerPeer: (rss1 - baselineRss) / n,
      phases: phaseSpread(summary),
      scrapeMs,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
    await settle(lab, sfu.url, n);
  }
  if (BROWSERS > 0) {
    const row = await browsersStep(lab, gw.url, tokens, engine, round);
    browserRows.push(row);
    console.log(JSON.stringify(row));
    await settle(lab, sfu.url, BROWSERS_ALONGSIDE + BROWSERS);
  }
  await publisher.leave();
  await new Promise((r) => setTimeout(r, 2000));
  for (const m of ROOMS) if (!(await roomsStep(lab, gw.url, sfu.proc.pid!, engine, round, m))) break;
  } finally {
    await lab.destroy();
  }
}

/**
 * Time to the first frame *decoded*: BROWSERS headless Chromiums (one process, a page each, in the
 * client netns) load the demo receive-only from the gateway while BROWSERS_ALONGSIDE swarm
 * subscribers join the same room, spread over the swarm's ramp. Each page measures from its
 * demo's `start` (just before the credentials request) to the first getStats that shows a decoded
 * video frame (polled every 20 ms), and where the time went (the demo's events, the first video
 * packet, Chrome's PLIs and NACKs). The SFU's CPU is not measured in this step (the browsers float
 * over every core); the whole machine's is, to say when the machine, not an SFU, is the limit.
 */
async function browsersStep(lab: NetnsLab, gateway: string, swarmTokens: string[], engine: EngineName, round: number): Promise<BrowserRow> {
  const browser = await launchInNetns(join(lab.topo.dir, 'browser'), lab.topo.ns.client, {});
  try {
    const pages = await Promise.all(Array.from({ length: BROWSERS }, async () => (await browser.newContext()).newPage()));
    const tokens = await Promise.all(pages.map((_, i) => lab.token(`bench-browser-${i}`)));
    let rampStarted!: () => void;
    const ramp = new Promise<void>((resolve) => (rampStarted = resolve));
    const m0 = machineTicks();
    const swarm = startSwarm(lab, gateway, swarmTokens, BROWSERS_ALONGSIDE, 1, (e) => e.event === 'ramp-start' && rampStarted());
    await Promise.race([ramp, swarm.done]);
    const rampMs = (BROWSERS_ALONGSIDE > 10 ? 20 : 0) * BROWSERS_ALONGSIDE;
    const results = await Promise.all(
      pages.map(async (page, i) => {
        await new Promise((r) => setTimeout(r, (i * rampMs) / BROWSERS));
        const q = new URLSearchParams({ room: 'bench', token: tokens[i], name: `browser${i}`, autojoin: '1', publish: '0' });
        await page.goto(`${gateway}/v1/webrtc/client/demo.html#${q}`);
        return page
          .evaluate(async () => {
            const demo = (window as any).oramaDemo;
            const end = Date.now() + 30000;
            // Also when the first video packet came, and what Chrome asked for before its first frame.
            let firstPacket: number | null = null;
            while (Date.now() < end) {
              const start = demo.events.find((e: { type: string }) => e.type === 'start');
              const pc = demo.call?.pc as RTCPeerConnection | undefined;
              if (start && pc) {
                for (const s of (await pc.getStats()).values()) {
                  if (s.type !== 'inbound-rtp' || s.kind !== 'video') continue;
                  if (firstPacket === null && s.packetsReceived > 0) firstPacket = Date.now() - start.t;
                  if (s.framesDecoded > 0) return { ms: Date.now() - start.t, start: start.t as number, events: demo.events as DemoEvent[], firstPacket, plis: s.pliCount ?? 0, nacks: s.nackCount ?? 0 };
                }
              }
              await new Promise((r) => setTimeout(r, 20));
            }
            const start = demo.events.find((e: { type: string }) => e.type === 'start');
            return { ms: null, start: (start?.t ?? 0) as number, events: demo.events as DemoEvent[], firstPacket, plis: 0, nacks: 0 };
          })
          .then((r) => ({ ms: r.ms, steps: { ...demoSteps(r.events, r.start), firstPacket: r.firstPacket, plis: r.plis, nacks: r.nacks } }))
          .catch((e: Error) => {
            console.log(`browser${i}: ${e.message}`);
            return { ms: null, steps: null };
          });
      }),
    );
    const m1 = machineTicks();
    const machineBusy = (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total);
    const swarmEnd = await swarm.done;
    const keyframes = (swarmEnd.summary?.subscribers as SwarmSubscriber[] | undefined)?.filter((s) => s.ttffMs !== null).length;
    console.log(`browsers step: ${keyframes ?? 'no summary: the swarm did not finish'}${keyframes === undefined ? '' : `/${BROWSERS_ALONGSIDE} swarm subscribers got a keyframe`}`);
    // The pages leave: a closed browser sends no `leave`, and the SFU would hold them for their resume grace.
    for (const page of pages) await page.evaluate(() => (window as any).oramaDemo.call?.leave()).catch(() => {});
    return { engine, round, alongside: BROWSERS_ALONGSIDE, machineBusy, firstFrameMs: results.map((r) => r.ms), steps: results.map((r) => r.steps) };
  } finally {
    await browser.close();
  }
}

/** The demo's events on the way to a first frame (ms after its start): where a slow one went. */
function demoSteps(events: DemoEvent[], start: number): Record<string, number | null> {
  const at = (pred: (e: DemoEvent) => boolean) => {
    const e = events.find(pred);
    return e ? e.t - start : null;
  };
  return {
    credentials: at((e) => e.type === 'credentials'),
    joined: at((e) => e.type === 'joined'),
    track: at((e) => e.type === 'track' && e.detail.kind === 'video'),
    connected: at((e) => e.type === 'state' && e.detail.connection === 'connected'),
  };
}

/** M rooms of 4: every peer publishes and receives the other three. False: the step failed. */
async function roomsStep(lab: NetnsLab, gateway: string, sfuPid: number, engine: EngineName, round: number, m: number): Promise<boolean> {
  const { ns } = lab.topo;
  const rss0 = rssMb(sfuPid);
  const peers: PeerProcess[] = [];
  try {
    for (let r = 0; r < m; r++) {
      for (let k = 0; k < 4; k++) {
        const name = `r${m}-${r}-${k}`;
        peers.push(new PeerProcess(lab, ns.client, name, { gateway, token: await lab.token(name, true), room: `four-${m}-${r}`, publish: true, width: 320, height: 240, fps: 15, maxVideoBitrate: PUBLISHER_KBPS * 1000, alignExtensions: true }));
      }
    }
    const connected = await Promise.all(
      peers.map((p) =>
        p.waitStats((s) => Object.values((s.received ?? {}) as Record<string, { frames: number }>).filter((x) => x.frames > 0).length >= 3, 60000).then(
          () => true,
          () => false,
        ),
      ),
    );
    for (const [i, ok] of connected.entries()) if (!ok) console.log(`${peers[i].name} did not receive all three: ${JSON.stringify(peers[i].events.slice(-3))}`);
    const stats = () => Promise.all(peers.map((p) => p.command('stats')));
    const counted = (list: Awaited<ReturnType<typeof stats>>) =>
      list.reduce((acc, s) => ({ got: acc.got + (s.inboundVideoPackets as number) + (s.inboundAudioPackets as number), lost: acc.lost + (s.packetsLost as number) }), { got: 0, lost: 0 });
    const gen = () => peers.reduce((sum, p) => sum + (p.pid ? cpuTicks(p.pid) : 0), 0);
    const s0 = counted(await stats());
    const c0 = cpuTicks(sfuPid);
    const g0 = gen();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, HOLD_S * 1000));
    const seconds = (Date.now() - t0) / 1000;
    const sfuCpu = (cpuTicks(sfuPid) - c0) / CLK_TCK / seconds;
    const generatorCpu = (gen() - g0) / CLK_TCK / seconds;
    const s1 = counted(await stats());
    const got = s1.got - s0.got;
    const lost = Math.max(0, s1.lost - s0.lost);
    const streams = m * 4 * 3 * 2;
    const row: RoomsRow = {
      engine,
      round,
      rooms: m,
      peers: 4 * m,
      streams,
      connected: connected.filter(Boolean).length,
      sfuCpu,
      cpuPerStreamPct: (sfuCpu * 100) / streams,
      lossPct: got + lost > 0 ? (100 * lost) / (got + lost) : 100,
      mbPerPeer: (rssMb(sfuPid) - rss0) / (4 * m),
      generatorCpu,
    };
    roomRows.push(row);
    console.log(JSON.stringify(row));
    return row.connected === row.peers;
  } finally {
    for (const p of peers) await p.leave().catch(() => {});
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const saturated = (cpu: number) => (cpu > 0.9 * Math.max(1, SFU_CPU) ? ' (saturated: the generator is the bottleneck)' : '');
const header = '| engine | round | N subs | fwd streams | got keyframe | first keyframe p50 / p95 (ms) | SFU CPU (% core) | CPU / stream (% core) | loss (%) | out (Mbit/s) | streams/core (extrap.) | SFU memory / subscriber (MB) | /metrics scrape (ms) | generator CPU (% core) |';
const lines = [
  header,
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.engine} | ${r.round} | ${r.n} | ${r.streams} | ${r.joined}/${r.n} | ${fmt(r.ttffP50)} / ${fmt(r.ttffP95)} | ${fmt(r.sfuCpu * 100, 1)} | ${fmt(r.cpuPerStreamPct, 3)} | ${fmt(r.lossPct, 2)} | ${fmt(r.mbitOut, 1)} | ${fmt(r.streamsPerCore)} | ${fmt(r.mbPerPeer, 2)} | ${fmt(r.scrapeMs, 1)} | ${fmt(r.generatorCpu * 100)}${saturated(r.generatorCpu)} |`),
  '',
  '| engine | round | rooms of 4 | peers | fwd streams | peers receiving all 3 | SFU CPU (% core) | CPU / stream (% core) | loss (%) | SFU memory / peer (MB) | generator CPU (% core) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...roomRows.map((r) => `| ${r.engine} | ${r.round} | ${r.rooms} | ${r.peers} | ${r.streams} | ${r.connected}/${r.peers} | ${fmt(r.sfuCpu * 100, 1)} | ${fmt(r.cpuPerStreamPct, 3)} | ${fmt(r.lossPct, 2)} | ${fmt(r.mbPerPeer, 2)} | ${fmt(r.generatorCpu * 100)}${saturated(r.generatorCpu)} |`),
];
const stepsOf = (s: Record<string, number | null> | null) => (s ? ['credentials', 'joined', 'track', 'connected', 'firstPacket'].map((k) => (s[k] === null || s[k] === undefined ? '–' : fmt(s[k]!))).join(' / ') + `; ${s.plis ?? 0} PLI, ${s.nacks ?? 0} NACK` : '–');
const p50p95 = ([a, b]: [number, number]) => `${fmt(a)} / ${fmt(b)}`;
lines.push(
  '',
  'Where the time to the first keyframe goes (swarm subscribers, ms from the credentials request, p50 / p95):',
  '',
  '| engine | round | N subs | credentials | joined | SFU offer with tracks | connected | first video packet | first keyframe |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.engine} | ${r.round} | ${r.n} | ${PHASES.map((p) => p50p95(r.phases[p])).join(' | ')} | ${fmt(r.ttffP50)} / ${fmt(r.ttffP95)} |`),
);
if (browserRows.length > 0)
  lines.push(
    '',
    `| engine | round | Chromiums | joining with swarm subscribers | machine CPU busy meanwhile (% of ${cpus().length} cores) | first frame decoded, each (ms; in brackets: credentials / joined / video track / connected / first video packet; Chrome's PLIs and NACKs before it) |`,
    '|---|---:|---:|---:|---:|---|',
    ...browserRows.map((r) => `| ${r.engine} | ${r.round} | ${r.firstFrameMs.length} | ${r.alongside} | ${fmt(r.machineBusy * 100)}${r.machineBusy > 0.9 ? ' (saturated)' : ''} | ${r.firstFrameMs.map((x, i) => `${x === null ? 'none in 30 s' : fmt(x)} (${stepsOf(r.steps[i])})`).join(', ')} |`),
  );
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const verdict = ENGINES.map((engine) => {
  const mine = rows.filter((r) => r.engine === engine);
  const steps = [...new Set(mine.map((r) => r.n))];
  const parts = steps.map((n) => {
    const at = mine.filter((r) => r.n === n);
    const cps = at.map((r) => r.cpuPerStreamPct);
    return `N=${n}: CPU/stream median ${fmt(median(cps), 3)} % (${fmt(Math.min(...cps), 3)}–${fmt(Math.max(...cps), 3)}), loss median ${fmt(median(at.map((r) => r.lossPct)), 2)} %, streams/core median ${fmt(median(at.map((r) => r.streamsPerCore)))}, memory/subscriber median ${fmt(median(at.map((r) => r.mbPerPeer)), 2)} MB`;
  });
  const rooms = roomRows.filter((r) => r.engine === engine);
  const roomParts = [...new Set(rooms.map((r) => r.rooms))].map((m) => {
    const at = rooms.filter((r) => r.rooms === m);
    const cps = at.map((r) => r.cpuPerStreamPct);
    return `${m} room(s) of 4: CPU/stream median ${fmt(median(cps), 3)} % (${fmt(Math.min(...cps), 3)}–${fmt(Math.max(...cps), 3)}), loss median ${fmt(median(at.map((r) => r.lossPct)), 2)} %, memory/peer median ${fmt(median(at.map((r) => r.mbPerPeer)), 2)} MB`;
  });
  const decoded = browserRows.filter((r) => r.engine === engine).flatMap((r) => r.firstFrameMs);
  const got = decoded.filter((x): x is number => x !== null);
  const browserPart = decoded.length ? [`first frame decoded in Chromium (with ${BROWSERS_ALONGSIDE} joining): ${got.length}/${decoded.length}, p50 ${fmt(percentile(got, 50))} ms, max ${fmt(Math.max(...got))} ms`] : [];
  return `**${engine}** — ${[...parts, ...roomParts, ...browserPart].join('; ')}.`;
}).join('\n\n');
console.log('\n' + lines.join('\n') + '\n\n' + verdict);

const doc = join(REPO, 'docs', 'benchmarks.md');
const section = [
  `### ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${cpus().length} cores (${cpus()[0]?.model ?? 'cpu'}), hold ${HOLD_S} s per step`,
  '',
  `Engines ${ENGINES.join(', ')}, interleaved over ${ROUNDS} round(s), each SFU pinned to core ${SFU_CPU} (mediasoup: one worker; its CPU counted with the SFU's). One publisher (@roamhq/wrtc, synthetic 640x480 @ 20 fps VP8 capped at ${PUBLISHER_KBPS} kbit/s + 48 kHz Opus; into the SFU: ${Object.entries(inbound).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')} Mbit/s) → N werift subscribers, all relayed by coturn across network namespaces; the subscribers (one swarm process) are pinned to the other core(s), the publishers and coturn are not. SFU CPU from /proc/<pid>/stat over the steady window; CPU per stream subtracts the publisher-only baseline (${Object.entries(baselines).map(([k, v]) => `${k}: ${fmt(v * 100, 1)} %`).join(', ')} of a core). "First keyframe" = first VP8 keyframe packet at the subscriber, measured from the start of its credentials request (werift does not decode). "First frame decoded" = ${BROWSERS} headless Chromium page(s) (one browser process in the client netns, receive-only demo pages served by the gateway) joining while ${BROWSERS_ALONGSIDE} swarm subscribers join the same room, from the demo's start (before its credentials request) to the first getStats showing a decoded frame (polled every 20 ms). Loss = RTP sequence gaps left after NACK over the window. Memory = growth of the RSS of the SFU process and its workers over the publisher-only baseline, per subscriber. Rooms of 4: every peer (@roamhq/wrtc, 320x240 @ 15 fps VP8 capped like the publisher + Opus) publishes and receives the other three (24 forwarded streams per room); its CPU is the whole SFU's, loss from the peers' packetsLost over the window, memory per peer over the SFU's RSS before the rooms.`,
  '',
  ...lines,
  '',
  verdict,
  '',
].join('\n');
const existing = existsSync(doc) ? readFileSync(doc, 'utf8') : '# Benchmarks\n';
let updated: string;
const at = existing.search(/^## SFU\s*$/m);
if (at < 0) updated = `${existing.replace(/\n*$/, '\n')}\n## SFU\n\nRun with \`npm run bench:sfu\` (root: it builds network namespaces).\n\n${section}`;
else {
  const next = existing.slice(at + 6).search(/^## /m);
  const end = next < 0 ? existing.length : at + 6 + next;
  updated = `${existing.slice(0, end).replace(/\n*$/, '\n')}\n${section}${existing.slice(end)}`;
}
writeFileSync(doc, updated);
console.log(`appended to ${doc}`);
