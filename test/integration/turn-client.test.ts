// Proves test/helpers/turn-client.ts (the TURN wall's attack-test client) against a real coturn on
// loopback: this file starts its own turnserver processes on 127.0.0.1 (free ports, a temp dir
// config, TURN REST credentials from a random static-auth-secret) and stops them by PID.
//   main:     permissive (allow-loopback-peers, TCP relays allowed), denied-peer-ip=127.0.0.2
//   strict:   no-tcp-relay, stale-nonce=2 (to exercise the client's 438 retry)
// Each refusal is asserted with the code coturn 4.6.1 answers, and the code is also printed as a
// TAP comment so a coturn upgrade that changes it is easy to read off.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { turnCredential } from '../../src/webrtc/credentials.ts';
import { TURNSERVER, requireTool } from '../helpers/sfu-netns.ts';
import { tempDir } from '../helpers/tmp.ts';
import { TurnClient, type TurnClientOptions, type TurnResult } from '../../src/webrtc/turn-client.ts';
import { until } from '../helpers/poll.ts';

requireTool(TURNSERVER, 'coturn');

const HOST = '127.0.0.1';
const REALM = 'test.local';
const SECRET = randomBytes(16).toString('hex');
const dir = tempDir(t, 'turn-client-');

// --- free ports ------------------------------------------------------------------------------

function canBind(port: number): Promise<boolean> {
  const tcp = new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, HOST, () => s.close(() => resolve(true)));
  });
  const udp = new Promise<boolean>((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => (s.close(), resolve(false)));
    s.bind(port, HOST, () => s.close(() => resolve(true)));
  });
  return Promise.all([tcp, udp]).then(([a, b]) => a && b);
}

const taken = new Set<number>();
/** A run of `count` consecutive ports, free for TCP and UDP on 127.0.0.1, below the ephemeral range. */
async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 12000);
    const run = Array.from({ length: count }, (_, i) => base + i);
    if (run.some((p) => taken.has(p))) continue;
    if ((await Promise.all(run.map(canBind))).every(Boolean)) {
      run.forEach((p) => taken.add(p));
      return base;
    }
  }
  throw new Error(`no ${count} free consecutive ports on ${HOST}`);
}

// --- coturn ----------------------------------------------------------------------------------

interface Coturn {
  port: number;
  relay: [number, number];
  log: () => string;
}

const procs: ChildProcess[] = [];
t.teardown(async () => {
  for (const p of procs) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    process.kill(p.pid!, 'SIGTERM');
    if ((await Promise.race([exited, sleep(3000, 'late')])) === 'late') process.kill(p.pid!, 'SIGKILL');
  }
});

async function startCoturn(name: string, extra: string[]): Promise<Coturn> {
  const port = await freePorts(2); // listening-port and its RFC 5780 alternate (port + 1)
  const relayBase = await freePorts(16);
  const relay: [number, number] = [relayBase, relayBase + 15];
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    [
      `listening-ip=${HOST}`,
      `listening-port=${port}`,
      `relay-ip=${HOST}`,
      `min-port=${relay[0]}`,
      `max-port=${relay[1]}`,
      `realm=${REALM}`,
      'use-auth-secret',
      `static-auth-secret=${SECRET}`,
      'fingerprint',
      'no-cli',
      'no-tls',
      'no-dtls',
      'allow-loopback-peers',
      `userdb=${join(dir, `${name}.turndb`)}`,
      'log-file=stdout',
      'simple-log',
      `pidfile=${join(dir, `${name}.pid`)}`,
      ...extra,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const proc = spawn(TURNSERVER, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  const keep = (b: Buffer) => (out = (out + b.toString()).slice(-200_000));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  // Ready when a STUN Binding is answered over UDP and over TCP.
  const deadline = Date.now() + 15000;
  for (let ready = false; !ready; await sleep(200)) {
    if (proc.exitCode !== null) throw new Error(`turnserver ${name} exited with ${proc.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`turnserver ${name} did not answer on ${HOST}:${port} within 15 s:\n${out}`);
    ready = true;
    for (const transport of ['udp', 'tcp'] as const) {
      const c = await TurnClient.open({ host: HOST, port, transport, username: '', password: '', timeoutMs: 300 }).catch(() => undefined);
      ready &&= !!c && (await c.binding()).ok;
      await c?.close();
    }
  }
  return { port, relay, log: () => out };
}

// --- credentials and clients -----------------------------------------------------------------

/** TURN REST credentials: "<expiry unix>:ns:alice", password base64(HMAC-SHA1(secret, username)). */
function creds(expiresIn = 600, secret = SECRET): { username: string; password: string } {
  const username = `${Math.floor(Date.now() / 1000) + expiresIn}:ns:alice`;
  return { username, password: turnCredential(secret, username) };
}

async function client(t: Test, server: Coturn, o: Partial<TurnClientOptions> = {}): Promise<TurnClient> {
  const c = await TurnClient.open({ host: HOST, port: server.port, transport: 'udp', ...creds(), ...o });
  t.teardown(() => c.close());
  return c;
}

function refused(t: Test, r: TurnResult, code: number, what: string): void {
  t.comment(`${what}: ${r.ok ? 'granted' : `${r.code} ${r.reason}`}`);
  t.notOk(r.ok, `${what} is refused`);
  if (!r.ok) t.equal(r.code, code, `${what}: code ${code}`);
}

/** ": <code> <reason>" for a refusal, for assertion messages. */
const why = (r: TurnResult) => (r.ok ? '' : `: ${r.code} ${r.reason}`);


const main = await startCoturn('main', ['denied-peer-ip=127.0.0.2']);
const strict = await startCoturn('strict', ['no-tcp-relay', 'stale-nonce=2']);

for (const transport of ['udp', 'tcp'] as const) {
  t.test(`a UDP allocation works over ${transport.toUpperCase()} transport`, async (t) => {
    const c = await client(t, main, { transport });
    const r = await c.allocate();
    t.ok(r.ok, 'Allocate succeeds after the 401 challenge');
    if (!r.ok) return;
    t.equal(r.relayed.ip, HOST, 'relayed address on relay-ip');
    t.ok(r.relayed.port >= main.relay[0] && r.relayed.port <= main.relay[1], `relayed port ${r.relayed.port} within min-port..max-port`);
    t.equal(r.mapped?.ip, HOST, 'XOR-MAPPED-ADDRESS is the client address');
    t.ok(r.lifetime > 0, `lifetime ${r.lifetime}`);
    // (coturn raises a requested lifetime below its 600 s default to 600, so ask for more)
    const again = await c.refresh(900);
    t.ok(again.ok, `Refresh with the same credentials succeeds${why(again)}`);
    if (again.ok) t.equal(again.lifetime, 900, 'with the requested lifetime');
  });
}

t.test('a wrong password is refused with 401', async (t) => {
  for (const transport of ['udp', 'tcp'] as const) {
    const c = await client(t, main, { transport, ...creds(600, 'not-the-secret') });
    refused(t, await c.allocate(), 401, `Allocate with a wrong password over ${transport}`);
  }
});

t.test('an expired username (past timestamp, correct HMAC) is refused with 401', async (t) => {
  const c = await client(t, main, creds(-60));
  refused(t, await c.allocate(), 401, 'Allocate with an expired username');
});

t.test('a request nobody answers resolves to code 0 "timeout"', async (t) => {
  const dead = await freePorts(1);
  const c = await TurnClient.open({ host: HOST, port: dead, transport: 'udp', ...creds(), timeoutMs: 600 });
  t.teardown(() => c.close());
  const r = await c.allocate();
  t.same(r, { ok: false, code: 0, reason: 'timeout' }, 'the bounded timeout ends the request (it never hangs)');
});

t.test('Send reaches a UDP peer on 127.0.0.1 and its reply comes back as a Data indication', async (t) => {
  const peer = dgram.createSocket('udp4');
  t.teardown(() => peer.close());
  await new Promise<void>((resolve) => peer.bind(0, HOST, resolve));
  const peerAddr = { ip: HOST, port: peer.address().port };
  let got: { data: Buffer; from: dgram.RemoteInfo } | undefined;
  peer.on('message', (data, from) => (got = { data, from }));

  const c = await client(t, main);
  const alloc = await c.allocate();
  if (!alloc.ok) return t.fail(`Allocate: ${alloc.code} ${alloc.reason}`);
  t.ok((await c.createPermission(HOST)).ok, 'CreatePermission 127.0.0.1 succeeds');
  const ping = randomBytes(32);
  c.send(peerAddr, ping);
  const recv = await until('the Send indication at the peer', 3000, () => got, undefined, 20);
  t.same(recv.data, ping, 'the peer receives the bytes');
  t.same({ ip: recv.from.address, port: recv.from.port }, alloc.relayed, 'from the relayed address');

  const data: { peer: { ip: string; port: number }; data: Buffer }[] = [];
  c.onData((from, bytes) => data.push({ peer: from, data: bytes }));
  const pong = randomBytes(48);
  peer.send(pong, recv.from.port, recv.from.address);
  const back = await until('the Data indication', 3000, () => data[0], undefined, 20);
  t.same(back.peer, peerAddr, 'Data indication XOR-PEER-ADDRESS is the peer');
  t.same(back.data, pong, 'Data indication carries the reply');
});

t.test('a TCP allocation is granted and Connect reaches a TCP listener on 127.0.0.1', async (t) => {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => (s.on('error', () => {}), accepted.push(s)));
  t.teardown(() => (accepted.forEach((s) => s.destroy()), new Promise((r) => server.close(r))));
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const peerAddr = { ip: HOST, port: (server.address() as net.AddressInfo).port };

  const c = await client(t, main, { transport: 'tcp' });
  const alloc = await c.allocate({ relay: 'tcp' });
  t.ok(alloc.ok, 'Allocate with REQUESTED-TRANSPORT TCP succeeds');
  if (!alloc.ok) return;
  t.ok((await c.createPermission(HOST)).ok, 'CreatePermission 127.0.0.1 succeeds');
  const conn = await c.connect(peerAddr);
  t.ok(conn.ok && conn.connectionId > 0, `Connect succeeds with a CONNECTION-ID${conn.ok ? ` (${conn.connectionId})` : why(conn)}`);
  if (!conn.ok) return;
  const s = await until('the relayed TCP connection at the listener', 3000, () => accepted[0], undefined, 20);
  t.same({ ip: s.remoteAddress, port: s.remotePort }, alloc.relayed, 'the listener sees the relayed address');

  const bound = await c.connectionBind(conn.connectionId);
  t.ok(bound.ok, `ConnectionBind on a new TCP connection succeeds${why(bound)}`);
  if (!bound.ok) { t.comment('MAINLOG\n' + main.log().split('\n').slice(-30).join('\n')); return; }
  t.teardown(() => bound.socket.destroy());
  const atPeer: Buffer[] = [], atClient: Buffer[] = [];
  s.on('data', (b: Buffer) => atPeer.push(b));
  bound.socket.on('data', (b: Buffer) => atClient.push(b)).resume();
  bound.socket.write('hello peer');
  await until('bytes at the peer', 3000, () => (Buffer.concat(atPeer).length >= 10 ? true : undefined), undefined, 20);
  t.equal(Buffer.concat(atPeer).toString(), 'hello peer', 'client -> peer over the data connection');
  s.write('hello client');
  await until('bytes at the client', 3000, () => (Buffer.concat(atClient).length >= 12 ? true : undefined), undefined, 20);
  t.equal(Buffer.concat(atClient).toString(), 'hello client', 'peer -> client over the data connection');
});

t.test('Connect to a closed loopback port is refused with 447', async (t) => {
  const closed = await freePorts(1);
  const c = await client(t, main, { transport: 'tcp' });
  t.ok((await c.allocate({ relay: 'tcp' })).ok, 'TCP allocation');
  t.ok((await c.createPermission(HOST)).ok, 'CreatePermission 127.0.0.1');
  refused(t, await c.connect({ ip: HOST, port: closed }), 447, 'Connect to a closed port');
});

t.test('a TCP relay requested over UDP transport is refused', async (t) => {
  const c = await client(t, main);
  refused(t, await c.allocate({ relay: 'tcp' }), 400, 'Allocate TCP relay over UDP');
});

t.test('coturn with no-tcp-relay refuses a TCP allocation with 442', async (t) => {
  const c = await client(t, strict, { transport: 'tcp' });
  refused(t, await c.allocate({ relay: 'tcp' }), 442, 'Allocate TCP relay with no-tcp-relay');
  t.ok((await c.allocate()).ok, 'the same client still gets a UDP allocation');
});

t.test('438 Stale Nonce is retried once with the new nonce', async (t) => {
  const c = await client(t, strict);
  t.ok((await c.allocate()).ok, 'Allocate');
  await sleep(3000); // stale-nonce=2
  const r = await c.refresh(300);
  t.ok(r.ok, `Refresh after the nonce went stale succeeds${why(r)}`);
  t.equal(c.staleNonces, 1, 'after one 438 Stale Nonce answer');
});

t.test('CreatePermission for ::ffff:127.0.0.1 on an IPv4 allocation is refused with 443', async (t) => {
  const c = await client(t, main);
  t.ok((await c.allocate()).ok, 'Allocate');
  refused(t, await c.createPermission('::ffff:127.0.0.1'), 443, 'CreatePermission ::ffff:127.0.0.1');
});

t.test('denied-peer-ip=127.0.0.2: CreatePermission 127.0.0.2 is refused with 403', async (t) => {
  const c = await client(t, main);
  t.ok((await c.allocate()).ok, 'Allocate');
  refused(t, await c.createPermission('127.0.0.2'), 403, 'CreatePermission 127.0.0.2');
  t.ok((await c.createPermission('127.0.0.1')).ok, '127.0.0.1 is still allowed');
});
