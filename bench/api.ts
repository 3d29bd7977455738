// npm run bench:api — throughput and latency of the WebRTC gateway on ONE core.
// Every server runs as a child process pinned with `taskset -c 0`; this process, which drives
// autocannon, pins itself to core 1. The gateway is src/gateway/main.ts on a SQLite store (the
// one-machine default; the nodes run the same code as an esbuild bundle on rqlite); a stand-in
// SFU (test helper) answers the room list's peer counts. The peer run is a bare fastify route answering a body of the same shape
// (bench/hello.ts), measured in the same rounds. Every row is measured ROUNDS times, the rounds
// interleaved (a noisy neighbour hits every row alike), and the median is reported with the
// range of req/s. Prints a table; --md appends it to docs/benchmarks.md.
//
// Environment: BENCH_ROUNDS (3), BENCH_DURATION seconds per measurement (5), BENCH_CONNECTIONS
// (50), BENCH_ONLY=<substring> (only matching rows, plus the ceiling), BENCH_NODE_ARGS (extra
// node flags for the servers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, appendFileSync, existsSync, openSync, closeSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { openSqliteStore } from '../src/store/sqlite.ts';
import { Secret } from '../src/secret/secret.ts';
import { generateJwtKey, mintToken, verificationKeyText } from '../src/webrtc/tokens.ts';
import type { JwtAlg } from '../src/store/store.ts';
import { startStandinSfu } from '../test/helpers/standin-sfu.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ONLY = process.env.BENCH_ONLY;
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'info'; // what the nodes' gateway.json sets; logs go to /dev/null here
const NS = 'bench';
const root = new URL('..', import.meta.url).pathname;

try { execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' }); } catch { /* single core: share it */ }

const dir = mkdtempSync(join(tmpdir(), 'orama-bench-'));
const children: ChildProcess[] = [];
const cleanup = () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid) { try { process.kill(c.pid, 'SIGTERM'); } catch { /* already gone */ } }
  }
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);

interface Server { proc: ChildProcess; port: number }

let serverCount = 0;
/** Starts a server with its output in a file (a gateway at log level info writes a line per
 * request: a pipe read by this process would cost the load generator's core). */
async function startServer(args: string[], env: Record<string, string> = {}): Promise<Server> {
  const logFile = join(dir, `server-${++serverCount}.log`);
  const fd = openSync(logFile, 'w');
  const proc = spawn('taskset', ['-c', '0', process.execPath, ...NODE_ARGS, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.push(proc);
  for (let i = 0; i < 400; i++) {
    const out = readFileSync(logFile, 'utf8');
    const m = /listening (\d+)|listening on [\d.]+:(\d+)/.exec(out);
    if (m) return { proc, port: Number(m[1] ?? m[2]) };
    if (proc.exitCode !== null) throw new Error(`server ${args.join(' ')} exited ${proc.exitCode}: ${out.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server ${args.join(' ')} did not listen within 20 s: ${readFileSync(logFile, 'utf8').slice(-500)}`);
}

async function gateway(alg: JwtAlg, tokenCache: boolean, sfuPort: number, internalKey: string) {
  const sub = join(dir, `${alg}-${tokenCache}`);
  mkdirSync(sub, { recursive: true });
  const store = await openSqliteStore(join(sub, 'state.db'));
  await store.putWebrtcConfig({ namespace: NS, enabled: true, turnSecret: new Secret(randomBytes(32).toString('base64url')), sfuNodeCount: 3, turnNodeCount: 2, turnTtl: 600 });
  const key = await store.putJwtKeyIfAbsent(generateJwtKey(NS, alg));
  for (let i = 0; i < 20; i++) await store.createRoom({ namespace: NS, roomId: `room-${i}`, sfuNode: 'node-1', owner: 'bench' });
  await store.close();
  writeFileSync(join(sub, 'jwt.key'), verificationKeyText(key), { mode: 0o600 });
  writeFileSync(join(sub, 'internal.key'), internalKey, { mode: 0o600 });
  writeFileSync(join(sub, 'gateway.json'), JSON.stringify({
    namespace: NS, listen: { host: '127.0.0.1', port: 0 },
    store: { driver: 'sqlite', path: join(sub, 'state.db') },
    jwt: { alg, key_file: join(sub, 'jwt.key') },
    turn: { urls: ['turn:203.0.113.11:3478?transport=udp', 'turns:203.0.113.11:5349?transport=tcp'] },
    sfu_nodes: [{ node: 'node-1', ip: '127.0.0.1', signal_port: sfuPort }],
    internal_key_file: join(sub, 'internal.key'),
    rate_limit: { credentials_per_minute: 1e9, room_creates_per_minute: 1e9 },
    log_level: LOG_LEVEL,
  }));
  const server = await startServer(['--import', 'tsx', 'src/gateway/main.ts', '--config', join(sub, 'gateway.json')], { ORAMA_GATEWAY_TOKEN_CACHE: tokenCache ? '1' : '0' });
  const token = await mintToken(key, { subject: 'bench', owner: true, ttl: 3600 });
  // 1000 users: their TURN usernames (and so the HMACs) differ per subject — the memo's worst case.
  const manyTokens = await Promise.all(Array.from({ length: 1000 }, (_, i) => mintToken(key, { subject: `user-${i}`, owner: false, ttl: 3600 })));
  return { ...server, token, manyTokens };
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

interface Scenario { name: string; server: Server; opts: autocannon.Options }
interface Sample { rps: number; p50: number; p99: number; cpuUs: number; non2xx: number; errors: number }

async function measure(s: Scenario, duration: number): Promise<Sample> {
  const cpu0 = cpuSeconds(s.server.proc.pid!);
  const r = await autocannon({ connections: CONNECTIONS, ...s.opts, duration });
  const cpuUs = Math.round(((cpuSeconds(s.server.proc.pid!) - cpu0) * 1e6) / Math.max(1, r.requests.total));
  return { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, cpuUs, non2xx: r.non2xx, errors: r.errors + r.timeouts };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

// --- servers
const internalKey = randomBytes(24).toString('base64url');
const sfu = await startStandinSfu('node-1', internalKey);
for (let i = 0; i < 20; i++) sfu.peers.set(`room-${i}`, i % 4);

const hello = await startServer(['--import', 'tsx', 'bench/hello.ts', '0']);
const gw: Record<string, Awaited<ReturnType<typeof gateway>>> = {};
for (const [alg, cache] of [['HS256', true], ['HS256', false], ['EdDSA', true], ['EdDSA', false]] as const) {
  gw[`${alg}-${cache}`] = await gateway(alg, cache, sfu.port, internalKey);
}
const post = (g: { port: number; token: string }, path: string, conns?: number): autocannon.Options =>
  ({ url: `http://127.0.0.1:${g.port}${path}`, method: 'POST', headers: { authorization: `Bearer ${g.token}` }, ...(conns ? { connections: conns } : {}) });
const hs = gw['HS256-true'];
const all: Scenario[] = [
  { name: `ceiling: bare fastify POST /hello, ${CONNECTIONS} connections`, server: hello, opts: post({ port: hello.port, token: hs.token }, '/hello') },
  { name: `POST /v1/webrtc/turn/credentials, HS256, token cache, ${CONNECTIONS} connections`, server: hs, opts: post(hs, '/v1/webrtc/turn/credentials') },
  { name: `POST /v1/webrtc/turn/credentials, HS256, verify every request, ${CONNECTIONS} connections`, server: gw['HS256-false'], opts: post(gw['HS256-false'], '/v1/webrtc/turn/credentials') },
  { name: `POST /v1/webrtc/turn/credentials, EdDSA, token cache, ${CONNECTIONS} connections`, server: gw['EdDSA-true'], opts: post(gw['EdDSA-true'], '/v1/webrtc/turn/credentials') },
  { name: `POST /v1/webrtc/turn/credentials, EdDSA, verify every request, ${CONNECTIONS} connections`, server: gw['EdDSA-false'], opts: post(gw['EdDSA-false'], '/v1/webrtc/turn/credentials') },
  { name: `GET /v1/webrtc/rooms (20 rooms), HS256, token cache, ${CONNECTIONS} connections`, server: hs, opts: { url: `http://127.0.0.1:${hs.port}/v1/webrtc/rooms`, headers: { authorization: `Bearer ${hs.token}` } } },
  {
    name: `POST /v1/webrtc/turn/credentials, HS256, token cache, 1000 users round-robin, ${CONNECTIONS} connections`,
    server: hs,
    opts: { url: `http://127.0.0.1:${hs.port}/v1/webrtc/turn/credentials`, requests: hs.manyTokens.map((tok) => ({ method: 'POST' as const, headers: { authorization: `Bearer ${tok}` } })) },
  },
  { name: 'ceiling: bare fastify POST /hello, 10 connections', server: hello, opts: post({ port: hello.port, token: hs.token }, '/hello', 10) },
  { name: 'POST /v1/webrtc/turn/credentials, HS256, token cache, 10 connections', server: hs, opts: post(hs, '/v1/webrtc/turn/credentials', 10) },
];
const scenarios = all.filter((s) => !ONLY || s.name.includes(ONLY) || s.name.startsWith('ceiling'));

// --- measure: warm every row up once (JIT, caches), then ROUNDS interleaved rounds
for (const s of scenarios) {
  const w = await measure(s, 2);
  if (w.non2xx || w.errors) throw new Error(`${s.name}: warm-up had ${w.non2xx} non-2xx answers and ${w.errors} errors`);
}
const samples = new Map<Scenario, Sample[]>(scenarios.map((s) => [s, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const s of scenarios) {
    const x = await measure(s, DURATION);
    samples.get(s)!.push(x);
    process.stdout.write(`round ${round}/${ROUNDS}  ${s.name.padEnd(82)} ${String(x.rps).padStart(6)} req/s  p99 ${x.p99} ms  ${x.cpuUs} µs CPU/req\n`);
  }
}
await sfu.stop();
// Servers end by SIGTERM and are waited for (a natural exit: --cpu-prof writes its profile then).
await Promise.all(children.map((c) => new Promise((r) => { if (c.exitCode !== null || c.signalCode !== null) r(null); else { c.once('exit', r); c.kill('SIGTERM'); } })));

interface Row { name: string; rps: number; min: number; max: number; p50: number; p99: number; cpuUs: number; non2xx: number; errors: number }
const rows: Row[] = scenarios.map((s) => {
  const xs = samples.get(s)!;
  return {
    name: s.name, rps: median(xs.map((x) => x.rps)), min: Math.min(...xs.map((x) => x.rps)), max: Math.max(...xs.map((x) => x.rps)),
    p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)), cpuUs: median(xs.map((x) => x.cpuUs)),
    non2xx: xs.reduce((a, x) => a + x.non2xx, 0), errors: xs.reduce((a, x) => a + x.errors, 0),
  };
});

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const ceilingOf = (r: Row) => rows.find((c) => c.name.startsWith('ceiling') && c.name.endsWith(r.name.slice(r.name.lastIndexOf(', ') + 2)));
const table = [
  `Run ${new Date().toISOString().slice(0, 10)} on ${cpu} (${cpus().length} cores), Node ${process.version}; every server pinned to core 0 (taskset -c 0), autocannon on core 1; gateway on SQLite; median of ${ROUNDS} interleaved rounds of ${DURATION} s after a 2 s warm-up per row.`,
  '',
  '| scenario | req/s (median) | req/s range | p50 ms | p99 ms | server CPU µs/req | % of ceiling | non-2xx / errors |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => {
    const c = ceilingOf(r);
    const pct = c && c !== r ? `${Math.round((100 * r.rps) / c.rps)}%` : '';
    return `| ${r.name} | ${r.rps} | ${r.min}–${r.max} | ${r.p50} | ${r.p99} | ${r.cpuUs} | ${pct} | ${r.non2xx} / ${r.errors} |`;
  }),
].join('\n');
process.stdout.write('\n' + table + '\n');

if (process.argv.includes('--md')) {
  const file = join(root, 'docs/benchmarks.md');
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  if (!existing.includes('## Gateway API')) appendFileSync(file, `${existing.endsWith('\n') ? '' : '\n'}\n## Gateway API\n\n`);
  appendFileSync(file, `\n${table}\n`);
  process.stdout.write(`appended to ${file}\n`);
}
cleanup();
process.exit(0);
