// npm run bench:api — throughput and latency of the WebRTC gateway on ONE core.
// The gateway (and the bare-fastify ceiling) run as child processes pinned with `taskset -c 0`;
// this process, which drives autocannon, pins itself to core 1. A stand-in SFU (test helper)
// answers the room list's peer counts. Prints a table; --md appends it to docs/benchmarks.md.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, appendFileSync, existsSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { openSqliteStore } from '../src/store/sqlite.ts';
import { Secret } from '../src/secret/secret.ts';
import { generateJwtKey, mintToken, verificationKeyText } from '../src/gateway/jwt.ts';
import type { JwtAlg } from '../src/store/store.ts';
import { startStandinSfu } from '../test/helpers/standin-sfu.ts';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
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

function startChild(args: string[], env: Record<string, string> = {}): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn('taskset', ['-c', '0', process.execPath, '--import', 'tsx', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c) => {
      out += c;
      const m = /listening (\d+)|listening on [\d.]+:(\d+)/.exec(out);
      if (m) resolve({ proc, port: Number(m[1] ?? m[2]) });
    });
    proc.stderr!.on('data', (c) => process.stderr.write(c));
    proc.once('exit', (code) => reject(new Error(`child ${args.join(' ')} exited ${code}: ${out.slice(-500)}`)));
  });
}

async function gateway(alg: JwtAlg, tokenCache: boolean, sfuPort: number, internalKey: string) {
  const sub = join(dir, `${alg}-${tokenCache}`);
  execFileSync('mkdir', ['-p', sub]);
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
    log_level: 'warn',
  }));
  const { proc, port } = await startChild(['src/gateway/main.ts', '--config', join(sub, 'gateway.json')],
    { ORAMA_GATEWAY_TOKEN_CACHE: tokenCache ? '1' : '0'});
  const token = await mintToken(key, { subject: 'bench', owner: true, ttl: 3600 });
  return { proc, port, token };
}

interface Row { scenario: string; rps: number; p50: number; p99: number; non2xx: number; errors: number }

async function run(scenario: string, opts: autocannon.Options): Promise<Row> {
  await autocannon({ ...opts, duration: 2, connections: CONNECTIONS }); // warm-up (JIT, caches)
  const r = await autocannon({ ...opts, duration: DURATION, connections: CONNECTIONS });
  const row = { scenario, rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts };
  process.stdout.write(`${scenario.padEnd(58)} ${String(row.rps).padStart(7)} req/s  p50 ${row.p50} ms  p99 ${row.p99} ms  non-2xx ${row.non2xx}\n`);
  return row;
}

const stop = (p: ChildProcess) => new Promise((r) => { p.once('exit', r); process.kill(p.pid!, 'SIGTERM'); });

const internalKey = randomBytes(24).toString('base64url');
const sfu = await startStandinSfu('node-1', internalKey);
for (let i = 0; i < 20; i++) sfu.peers.set(`room-${i}`, i % 4);
const rows: Row[] = [];

const hello = await startChild(['bench/hello.ts', '0']);
rows.push(await run('ceiling: bare fastify GET /hello', { url: `http://127.0.0.1:${hello.port}/hello` }));
await stop(hello.proc);

for (const [alg, cache] of [['HS256', false], ['HS256', true], ['EdDSA', false], ['EdDSA', true]] as const) {
  const g = await gateway(alg, cache, sfu.port, internalKey);
  rows.push(await run(`POST /v1/webrtc/turn/credentials, ${alg}, ${cache ? 'token cache' : 'verify every request'}`,
    { url: `http://127.0.0.1:${g.port}/v1/webrtc/turn/credentials`, method: 'POST', headers: { authorization: `Bearer ${g.token}` } }));
  if (alg === 'HS256' && !cache) {
    rows.push(await run(`GET /v1/webrtc/rooms (20 rooms), ${alg}, verify every request`,
      { url: `http://127.0.0.1:${g.port}/v1/webrtc/rooms`, headers: { authorization: `Bearer ${g.token}` } }));
  }
  await stop(g.proc);
}
await sfu.stop();

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const table = [
  `Run ${new Date().toISOString().slice(0, 10)} on ${cpu} (${cpus().length} cores), Node ${process.version}; gateway pinned to core 0 (taskset -c 0), autocannon on core 1; ${CONNECTIONS} connections, ${DURATION} s per row after a 2 s warm-up; SQLite store.`,
  '',
  '| scenario | req/s | p50 ms | p99 ms | non-2xx |',
  '|---|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.scenario} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.non2xx} |`),
].join('\n');
const ceiling = rows[0].rps;
const ratio = rows.slice(1).map((r) => `${r.scenario}: ${Math.round((100 * r.rps) / ceiling)}% of the ceiling`).join('; ');
const text = `${table}\n\nRelative to the bare-fastify ceiling measured in the same run: ${ratio}.`;
process.stdout.write('\n' + text + '\n');

if (process.argv.includes('--md')) {
  const file = join(root, 'docs/benchmarks.md');
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  if (!existing.includes('## Gateway API')) appendFileSync(file, `${existing.endsWith('\n') ? '' : '\n'}\n## Gateway API\n\n`);
  appendFileSync(file, `\n${text}\n`);
  process.stdout.write(`appended to ${file}\n`);
}
cleanup();
process.exit(0);
