// npm run soak [-- --duration 120 --rooms 3 --publishers 2 --every 10 --seed 1]
//
// A bounded soak of one SFU process (src/sfu/main.ts) with real peers and real media: the lab of
// bench/sfu.ts and the SFU tests (test/helpers/sfu-netns.ts: client netns -> coturn -> SFU netns,
// relay-only, the real gateway) and their @roamhq/wrtc peers (test/helpers/sfu-wrtc-peer.ts,
// synthetic camera VP8 + 440 Hz Opus). In each of R rooms one long-lived subscriber stays for the
// whole run while P publisher slots churn: a peer joins, publishes audio+video, stays a random
// (seeded) time, leaves, and after a random gap the slot's next peer joins. The run stops by
// itself after --duration seconds: the churners leave, then the subscribers.
//
// Sampled at the start (subscribers connected, 5 s idle), every --every seconds, at the end, after
// the churners left and after everyone left: the SFU's RSS and V8 heap (its /metrics), open file
// descriptors (/proc/PID/fd), CPU (/proc/PID/stat utime+stime over the interval), m-lines per
// peer connection (max and mean over the subscribers' current SDP; and the most on any SFU
// connection, from /metrics), and the load generator's own CPU (this process, its live peers and
// the peers that exited). Prints a Markdown table. Needs root (netns) and coturn.
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { NetnsLab, TURNSERVER, requireTool } from '../test/helpers/sfu-netns.ts';
import { PeerProcess, type PeerEvent } from '../test/helpers/sfu-peer-process.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '120' },
    rooms: { type: 'string', default: '3' },
    publishers: { type: 'string', default: '2' },
    every: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    'min-stay': { type: 'string', default: '5' },
    'max-stay': { type: 'string', default: '20' },
    'max-gap': { type: 'string', default: '3' },
    width: { type: 'string', default: '320' },
    height: { type: 'string', default: '240' },
    fps: { type: 'string', default: '15' },
  },
});
const num = (name: keyof typeof values, min: number) => {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`soak: --${name} must be a number >= ${min} (got ${JSON.stringify(values[name])})\n`);
    process.exit(2);
  }
  return n;
};
const DURATION_S = num('duration', 10);
const ROOMS = num('rooms', 1);
const SLOTS = num('publishers', 1);
const EVERY_S = num('every', 1);
const SEED = num('seed', 0);
const MIN_STAY_S = num('min-stay', 1);
const MAX_STAY_S = Math.max(MIN_STAY_S, num('max-stay', 1));
const MAX_GAP_S = num('max-gap', 0);
const MEDIA = { width: num('width', 16), height: num('height', 16), fps: num('fps', 1) };
requireTool(TURNSERVER, 'coturn');

const CLK_TCK = 100; // Linux USER_HZ
/** A peer counts for the media check if it stayed this long (one cut short by the end may not). */
const MEDIA_CHECK_MIN_STAY_MS = 4000;

/** mulberry32: the churn schedule (stays, gaps, start offsets) is a function of --seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function stat(pid: number | 'self'): string[] {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(') ') + 2).split(' ');
}
/** utime + stime (fields 14, 15), seconds. */
function cpuSeconds(pid: number | 'self'): number {
  try {
    const f = stat(pid);
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0; // exited between listing and reading
  }
}
/** cutime + cstime (fields 16, 17): children that exited and were reaped, seconds. */
function reapedChildrenCpuSeconds(): number {
  const f = stat('self');
  return (Number(f[13]) + Number(f[14])) / CLK_TCK;
}
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const percentile = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

type Sdp = { mlines: number; activeMlines: number; transceivers: number };
type Received = Record<string, { frames: number; audioFrames: number; audioEnergy: number }>;
interface Churner {
  room: string;
  proc: PeerProcess;
  peerId?: string;
  joinedAt?: number;
  leftAt?: number;
}
interface Sample {
  label: string;
  t: number;
  peers: number;
  joins: number;
  rssMb: number;
  heapMb: number;
  fds: number;
  sfuCpu: number;
  genCpu: number;
  mMax: number;
  mMean: number;
  sfuSectionsMax: number;
}

const lab = new NetnsLab();
let cleaned = false;
const cleanup = async () => {
  if (cleaned) return;
  cleaned = true;
  await lab.destroy();
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
const hardDeadline = setTimeout(() => {
  process.stderr.write('soak: still running long after --duration; giving up\n');
  void cleanup().then(() => process.exit(1));
}, (DURATION_S + 180) * 1000);

const random = prng(SEED);
const between = (lo: number, hi: number) => lo + (hi - lo) * random();
const samples: Sample[] = [];
const churners: Churner[] = [];
const subs: PeerProcess[] = [];
const roomNames = Array.from({ length: ROOMS }, (_, i) => `soak${i + 1}`);
let joins = 0;
let joinFailures = 0;
let stopping = false;
let wakeStop: () => void = () => {};
const stopped = new Promise<void>((resolve) => (wakeStop = resolve));
const loadStart = loadavg();
let runStart = 0;

try {
  lab.up();
  const { ns, addr } = lab.topo;
  lab.startCoturn();
  const sfu = lab.startSfu('sfu', { signalPort: 30001, mediaPorts: [20000, 20999], engine: 'werift' });
  const gw = await lab.startGateway(8080, [`${addr.sfu}:30001`]);
  await lab.waitHttp(ns.turn, `${sfu.url}/health`, 30000);
  await lab.waitLog('gateway-8080', /listening/, 30000);
  const sfuPid = sfu.proc.pid!;
  if (readFileSync(`/proc/${sfuPid}/comm`, 'utf8').trim() !== 'node') throw new Error(`pid ${sfuPid} is not the SFU's node process`);

  const peer = async (name: string, room: string, options: Record<string, unknown>) =>
    new PeerProcess(lab, ns.client, name, { gateway: gw.url, token: await lab.token(name, true), room, ...options });

  let last = { at: Date.now(), sfu: cpuSeconds(sfuPid), gen: 0 };
  // A peer's process is read live until it exits; from then on it is in this process's cutime.
  const genCpu = () => cpuSeconds('self') + reapedChildrenCpuSeconds() + [...subs, ...churners.map((c) => c.proc)].reduce((sum, p) => sum + (p.exited || !p.pid ? 0 : cpuSeconds(p.pid)), 0);
  last.gen = genCpu();

  const sample = async (label: string): Promise<Sample> => {
    const body = lab.curl(ns.turn, `${sfu.url}/metrics`).body;
    const metric = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(body)?.[1] ?? NaN);
    const sdps = (await Promise.all(subs.filter((s) => !s.exited).map((s) => s.command('stats').catch(() => undefined))))
      .map((s) => s?.sdp as Sdp | undefined)
      .filter((s): s is Sdp => !!s);
    const now = Date.now();
    const sfuCpu = cpuSeconds(sfuPid);
    const gen = genCpu();
    const seconds = (now - last.at) / 1000;
    const row: Sample = {
      label,
      t: runStart ? (now - runStart) / 1000 : 0,
      peers: metric('orama_sfu_peers'),
      joins,
      rssMb: rssMb(sfuPid),
      heapMb: metric('orama_sfu_heap_used_bytes') / 2 ** 20,
      fds: fdCount(sfuPid),
      sfuCpu: (100 * (sfuCpu - last.sfu)) / seconds,
      genCpu: (100 * (gen - last.gen)) / seconds,
      mMax: sdps.length ? Math.max(...sdps.map((s) => s.mlines)) : NaN,
      mMean: sdps.length ? sdps.reduce((a, s) => a + s.mlines, 0) / sdps.length : NaN,
      sfuSectionsMax: metric('orama_sfu_media_sections_max'),
    };
    last = { at: now, sfu: sfuCpu, gen };
    samples.push(row);
    process.stderr.write(`[soak] ${JSON.stringify(row)}\n`);
    return row;
  };

  // ---- the long-lived subscribers, one per room ----
  for (const room of roomNames) subs.push(await peer(`${room}-sub`, room, {}));
  for (const s of subs) {
    await s.waitFor('joined', () => true, 30000);
    await s.waitFor('pc-state', (e) => e.state === 'connected', 30000);
  }
  last = { at: Date.now(), sfu: cpuSeconds(sfuPid), gen: genCpu() };
  await sleep(5000);
  await sample('start');
  runStart = Date.now();

  // ---- churn ----
  const restUnlessStopping = (ms: number) => Promise.race([sleep(ms), stopped]);
  let serial = 0;
  const slot = async (room: string, first: boolean) => {
    if (first) await restUnlessStopping(between(0, MAX_GAP_S + MIN_STAY_S) * 1000);
    while (!stopping) {
      const stayMs = between(MIN_STAY_S, MAX_STAY_S) * 1000;
      const gapMs = between(0.5, Math.max(0.5, MAX_GAP_S)) * 1000;
      const c: Churner = { room, proc: await peer(`${room}-p${++serial}`, room, { publish: true, ...MEDIA }) };
      churners.push(c);
      try {
        const joined = await c.proc.waitFor('joined', () => true, 30000);
        joins++;
        c.peerId = joined.peer_id as string;
        c.joinedAt = joined.t;
        await restUnlessStopping(stayMs);
      } catch (error) {
        joinFailures++;
        process.stderr.write(`[soak] ${c.proc.name}: ${(error as Error).message.slice(0, 300)}\n`);
      }
      await c.proc.leave();
      c.leftAt = Date.now();
      await restUnlessStopping(gapMs);
    }
  };
  const slots = roomNames.flatMap((room) => Array.from({ length: SLOTS }, () => slot(room, true)));
  while (Date.now() - runStart < DURATION_S * 1000 - 500) {
    const next = Math.min(runStart + DURATION_S * 1000, runStart + (samples.length) * EVERY_S * 1000);
    await sleep(Math.max(0, next - Date.now()));
    if (Date.now() - runStart >= DURATION_S * 1000 - 500) break;
    await sample(`${Math.round((Date.now() - runStart) / 1000)} s`);
  }
  await sleep(Math.max(0, runStart + DURATION_S * 1000 - Date.now()));
  await sample('end');
  stopping = true;
  wakeStop();
  await Promise.all(slots);
  await sleep(5000);
  await sample('churners left');

  // ---- media check: every publisher that stayed a while reached its room's subscriber ----
  const finals = new Map<string, Received>();
  for (const [i, s] of subs.entries()) finals.set(roomNames[i], ((await s.command('stats')).received ?? {}) as Received);
  const firstFrameAt = new Map<string, number>();
  for (const s of subs) for (const e of s.events as PeerEvent[]) if (e.event === 'first-frame' && !firstFrameAt.has(e.from as string)) firstFrameAt.set(e.from as string, e.t);
  const checked = churners.filter((c) => c.peerId && c.joinedAt && c.leftAt && c.leftAt - c.joinedAt >= MEDIA_CHECK_MIN_STAY_MS);
  const delivered = checked.filter((c) => {
    const rx = finals.get(c.room)?.[c.peerId!];
    return !!rx && rx.frames > 0 && rx.audioFrames > 0;
  });
  const ttff = checked.map((c) => (firstFrameAt.has(c.peerId!) ? firstFrameAt.get(c.peerId!)! - c.joinedAt! : NaN)).filter(Number.isFinite);

  for (const s of subs) await s.leave();
  await sleep(5000);
  await sample('all left');
  const sfuLog = lab.logOf('sfu');
  const unhandled = (sfuLog.match(/"event":"unhandled-rejection"/g) ?? []).length;
  const mediaFailed = (sfuLog.match(/"event":"media-failed"/g) ?? []).length;
  const loadEnd = loadavg();

  // ---- report ----
  const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const lines = [
    '| t | peers | joins | SFU RSS (MB) | SFU heap (MB) | SFU fds | SFU CPU (% core) | load gen CPU (% core) | m-lines per subscriber conn (incl. data channel), max / mean | audio/video m-lines, most on one SFU conn |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...samples.map((s) => `| ${s.label} | ${fmt(s.peers)} | ${s.joins} | ${fmt(s.rssMb)} | ${fmt(s.heapMb, 1)} | ${s.fds} | ${fmt(s.sfuCpu)} | ${fmt(s.genCpu)} | ${fmt(s.mMax)} / ${fmt(s.mMean, 1)} | ${fmt(s.sfuSectionsMax)} |`),
  ];
  const first = samples[0];
  const end = samples.find((s) => s.label === 'end')!;
  const allLeft = samples.at(-1)!;
  const summary = [
    `${ROOMS} rooms x (1 subscriber + ${SLOTS} churning publisher slots), ${DURATION_S} s, seed ${SEED}, stay ${MIN_STAY_S}-${MAX_STAY_S} s, gap 0.5-${Math.max(0.5, MAX_GAP_S)} s, ${MEDIA.width}x${MEDIA.height} @ ${MEDIA.fps} fps VP8 + Opus.`,
    `Publisher joins: ${joins} (${joinFailures} failed). Media: ${delivered.length}/${checked.length} publishers that stayed >= ${MEDIA_CHECK_MIN_STAY_MS / 1000} s reached their room's subscriber (video frames decoded and audio); publisher joined -> first frame at the subscriber p50 ${fmt(percentile(ttff, 50))} ms, p95 ${fmt(percentile(ttff, 95))} ms.`,
    `Subscriber m-lines, max: ${fmt(first.mMax)} at the start -> ${fmt(end.mMax)} at the end. SFU RSS ${fmt(first.rssMb)} -> ${fmt(end.rssMb)} MB (end) -> ${fmt(allLeft.rssMb)} MB (all left); fds ${first.fds} -> ${end.fds} -> ${allLeft.fds}; heap ${fmt(first.heapMb, 1)} -> ${fmt(end.heapMb, 1)} -> ${fmt(allLeft.heapMb, 1)} MB.`,
    `SFU log: ${unhandled} unhandled rejections, ${mediaFailed} media-failed. Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'cpu'}), load average ${loadStart.map((x) => x.toFixed(1)).join(' ')} at the start, ${loadEnd.map((x) => x.toFixed(1)).join(' ')} at the end.`,
  ];
  console.log(['', ...lines, '', ...summary].join('\n'));
} finally {
  stopping = true;
  wakeStop();
  for (const p of [...subs, ...churners.map((c) => c.proc)]) if (!p.exited) await p.leave().catch(() => {});
  await cleanup();
  clearTimeout(hardDeadline);
}
