// npm run bench:sfu — one publisher (640x480 VP8 + Opus, @roamhq/wrtc with a synthetic camera)
// -> N subscribers (werift, receive-only) through real coturn, in the same network-namespace
// topology as the tests: client netns -> coturn netns -> SFU netns. For each N: time to the first
// keyframe p50/p95, SFU CPU (from /proc/<pid>/stat of the SFU process) per forwarded stream,
// packet loss over a steady window, and the extrapolated forwarded streams per core.
// Bounded: N in BENCH_SFU_N (default 1,10,50,100), a fixed hold per step. Appends to
// docs/benchmarks.md under "## SFU". Needs root (netns), coturn.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NetnsLab, REPO, TSX_NODE, TURNSERVER, requireTool } from '../test/helpers/sfu-netns.ts';
import { PeerProcess } from '../test/helpers/sfu-peer-process.ts';

requireTool(TURNSERVER, 'coturn');
const STEPS = (process.env.BENCH_SFU_N ?? '1,10,50,100').split(',').map(Number);
const HOLD_S = Number(process.env.BENCH_SFU_HOLD_S ?? 10);
const CLK_TCK = 100; // Linux USER_HZ
const LOSS_FREE = 0.001; // "without loss": at most 0.1 % of packets missing after NACK

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Row {
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
}

const lab = new NetnsLab();
const cleanup = () => lab.destroy();
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
const rows: Row[] = [];
let baselineCpu = 0;
let inboundMbit = 0;
try {
  lab.up();
  const { ns, addr } = lab.topo;
  lab.startCoturn();
  const sfu = lab.startSfu('sfu', { signalPort: 30001, mediaPorts: [20000, 20499] });
  const gw = await lab.startGateway(8080, [`${addr.sfu}:30001`]);
  const token = await lab.token('bench');
  await lab.waitHttp(ns.turn, `${sfu.url}/health`, 30000);
  await lab.waitLog('gateway-8080', /listening/);
  const publisher = new PeerProcess(lab, ns.client, 'publisher', { gateway: gw.url, token, room: 'bench', publish: true, width: 640, height: 480, fps: 20 });
  await publisher.waitFor('joined');
  await publisher.waitFor('pc-state', (e) => e.state === 'connected', 20000);
  await new Promise((r) => setTimeout(r, 3000)); // let the publisher's bitrate settle

  const metric = (name: string) => lab.metric(ns.turn, sfu.url, name);
  // baseline: publisher only
  {
    const c0 = cpuTicks(sfu.proc.pid!);
    const b0 = metric('orama_sfu_rtp_bytes_in_total');
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 5000));
    baselineCpu = (cpuTicks(sfu.proc.pid!) - c0) / CLK_TCK / ((Date.now() - t0) / 1000);
    inboundMbit = ((metric('orama_sfu_rtp_bytes_in_total') - b0) * 8) / ((Date.now() - t0) / 1000) / 1e6;
    console.log(`baseline: publisher only, SFU CPU ${(baselineCpu * 100).toFixed(1)} % of a core, inbound ${inboundMbit.toFixed(2)} Mbit/s`);
  }

  for (const n of STEPS) {
    const swarm = spawn('ip', ['netns', 'exec', ns.client, ...TSX_NODE, 'bench/sfu-swarm.ts', JSON.stringify({ gateway: gw.url, token, room: 'bench', n, holdS: HOLD_S, rampMs: n > 10 ? 20 : 0 })], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const events: Record<string, any> = {};
    let cpu0 = 0;
    let bytes0 = 0;
    let t0 = 0;
    let cpu1 = 0;
    let bytes1 = 0;
    let t1 = 0;
    const done = new Promise<void>((resolve) => swarm.on('exit', () => resolve()));
    const deadline = setTimeout(() => swarm.kill('SIGKILL'), (90 + HOLD_S) * 1000);
    createInterface({ input: swarm.stdout! }).on('line', (line) => {
      let e: any;
      try {
        e = JSON.parse(line);
      } catch {
        return;
      }
      events[e.event] = e;
      if (e.event === 'window-start') {
        cpu0 = cpuTicks(sfu.proc.pid!);
        bytes0 = metric('orama_sfu_rtp_bytes_out_total');
        t0 = Date.now();
      }
      if (e.event === 'summary') {
        cpu1 = cpuTicks(sfu.proc.pid!);
        bytes1 = metric('orama_sfu_rtp_bytes_out_total');
        t1 = Date.now();
      }
    });
    await done;
    clearTimeout(deadline);
    const summary = events.summary?.subscribers as { ttffMs: number | null; video: { expected: number; received: number }; audio: { expected: number; received: number } }[] | undefined;
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
    };
    rows.push(row);
    console.log(JSON.stringify(row));
    await new Promise((r) => setTimeout(r, 2000)); // let the SFU drop the previous swarm
  }
  await publisher.leave();
} finally {
  await cleanup();
}

const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const header = '| N subs | fwd streams | got keyframe | first keyframe p50 / p95 (ms) | SFU CPU (% core) | CPU / stream (% core) | loss (%) | out (Mbit/s) | streams/core (extrap.) |';
const lines = [
  header,
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.n} | ${r.streams} | ${r.joined}/${r.n} | ${fmt(r.ttffP50)} / ${fmt(r.ttffP95)} | ${fmt(r.sfuCpu * 100, 1)} | ${fmt(r.cpuPerStreamPct, 3)} | ${fmt(r.lossPct, 2)} | ${fmt(r.mbitOut, 1)} | ${fmt(r.streamsPerCore)} |`),
];
const lossFree = rows.filter((r) => r.lossPct / 100 <= LOSS_FREE && r.joined === r.n);
const best = lossFree.at(-1);
const verdict = best
  ? `Largest N without loss (≤ ${LOSS_FREE * 100} % after NACK): ${best.n} subscribers = ${best.streams} forwarded streams at ${fmt(best.sfuCpu * 100, 1)} % of one core → about ${fmt(best.streamsPerCore)} forwarded streams (${fmt(best.streamsPerCore / 2)} subscribers of audio+video) per core, extrapolated.`
  : 'No step was loss-free.';
console.log('\n' + lines.join('\n') + '\n\n' + verdict);

const doc = join(REPO, 'docs', 'benchmarks.md');
const section = [
  `### ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${cpus().length} cores (${cpus()[0]?.model ?? 'cpu'}), hold ${HOLD_S} s per step`,
  '',
  `One publisher (@roamhq/wrtc, synthetic 640x480 @ 20 fps VP8 + 48 kHz Opus, ${fmt(inboundMbit, 2)} Mbit/s into the SFU) → N werift subscribers, all relayed by coturn across network namespaces; publisher, subscribers, coturn and the SFU share the machine. SFU CPU from /proc/<pid>/stat over the steady window; CPU per stream subtracts the publisher-only baseline (${fmt(baselineCpu * 100, 1)} % of a core). "First keyframe" = first VP8 keyframe packet at the subscriber, measured from the start of its credentials request (werift does not decode). Loss = RTP sequence gaps left after NACK over the window.`,
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
