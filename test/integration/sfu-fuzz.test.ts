// A bounded, seeded signaling fuzzer against the real SFU (issue #14): src/sfu/server.ts with each
// engine in turn (werift, then mediasoup), in this process, signaled over real WebSockets with the internal key and the
// headers the gateway sends. 20 connections send 10 000 frames in all, floods aside (valid
// messages in any order, valid-shaped ones with a field broken, unknown types, truncated and deep
// JSON, frames at and above the 64 KiB limit, binary frames, garbage and absurd SDP, garbage
// candidates, real werift offers), reconnecting whenever the SFU closes them (flood, ws bounds,
// DELETE /rooms) or they close themselves (politely, abruptly, in the middle of a negotiation).
//
// Asserted: no uncaught exception and no unhandled rejection; every frame gets the reply the
// protocol gives it, in order (test/helpers/signaling-fuzz.ts says which); every close the SFU
// makes has the expected code (and reason); no `internal` error; the SFU serves a fresh client at
// the end; every room and peer is gone once the sockets are; after a forced GC the heap is within
// 10 % of its baseline (measured after a warm-up of 400 frames) and the active resources are
// those of the baseline.
//
// Re-run a failure with its seed: ORAMA_FUZZ_SEED=<seed> npx tap test/integration/sfu-fuzz.test.ts
// (the seed is in the test's name). The seed fixes every connection's frames; how the 20
// connections interleave is up to the scheduler.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import t, { type Test } from 'tap';
import { RTCPeerConnection } from 'werift';
import WebSocket from 'ws';
import { resolveSfuConfig } from '../../src/sfu/config.ts';
import { ENGINE_NAMES, type EngineName } from '../../src/sfu/engine.ts';
import { startSfu, type RunningSfu } from '../../src/sfu/server.ts';
import { turnCredential } from '../../src/webrtc/credentials.ts';
import { ERROR_CODES, type ServerMessage } from '../../src/webrtc/protocol.ts';
import { RELAY_IP, Rng, barrierFrame, closingFrame, fuzzSeed, nextFrame, realOfferFrame, type ConnState, type Frame, type RealOffers, type SyncExpect } from '../helpers/signaling-fuzz.ts';
import { tempDir } from '../helpers/tmp.ts';

// Installed first: anything thrown or rejected without a handler, in the SFU or in werift.
const crashes: string[] = [];
process.on('unhandledRejection', (reason) => void crashes.push(`unhandledRejection: ${String((reason as Error)?.stack ?? reason).slice(0, 1500)}`));
process.on('uncaughtException', (error) => void crashes.push(`uncaughtException: ${String(error?.stack ?? error).slice(0, 1500)}`));

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const SEED = fuzzSeed();
const CONNECTIONS = 20;
const FRAMES = 10_000;
const WARMUP_FRAMES = 400;
/** The whole fuzz phase (warm-up excluded); past it the test fails instead of hanging. */
const DEADLINE_MS = 150_000;
/** Any single wait for the SFU (a reply, a close, a room to go). */
const WAIT_MS = 10_000;
const NAMESPACE = 'fuzzns';
const MEDIA_PORTS: [number, number] = [39300, 39699];
const CLIENT_PORTS: [number, number] = [39700, 39719];
/** Below the SFU's bucket (20 frames/s, burst 60): pacing must never be what gets frames dropped. */
const PACE = { rate: 18, burst: 50 };
const ANSWER_WITHOUT_OFFER = 'answer without an outstanding SFU offer';
const STACK = /\n\s+at |\.ts:\d+|node:internal/;

// werift never gathers on loopback, so the SFU refuses 127.0.0.1 (as in sfu-room.test.ts): it
// listens on this host's own first non-loopback IPv4 address; the traffic stays in the kernel.
const defaultDev = /dev (\S+)/.exec(execFileSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' }))?.[1];
const HOST_IP = [...(defaultDev ? (networkInterfaces()[defaultDev] ?? []) : []), ...Object.values(networkInterfaces()).flat()]
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
if (!HOST_IP) throw new Error('no non-loopback IPv4 address on this host: the SFU needs one to bind');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---- bookkeeping: counters and at most a few dozen failure texts (never the frames themselves) ----
const failures: string[] = [];
let failureCount = 0;
function fail(text: string): void {
  failureCount++;
  if (failures.length < 40) failures.push(text.slice(0, 600));
}
const bump = (map: Map<string, number>, key: string, n = 1) => map.set(key, (map.get(key) ?? 0) + n);
const freshStats = () => ({
  frames: 0,
  /** Frames of the floods: on top of the budget (how many go out depends on when the close comes). */
  floodFrames: 0,
  kinds: new Map<string, number>(),
  replies: new Map<string, number>(),
  closes: new Map<string, number>(),
  upgrades: new Map<string, number>(),
  generations: 0,
  segments: 0,
  settled: 0,
  loose: 0,
  floods: 0,
  deletes: 0,
  answers: 0,
});
/** This engine's run's counts (each engine's run starts afresh). */
let stats = freshStats();

// ---- the SFU ----
const dir = tempDir(t, 'osfu-fuzz-');
const TURN_SECRET = `fuzz-turn-${randomBytes(12).toString('hex')}`;
const KEY = `fuzz-key-${randomBytes(12).toString('hex')}`;
writeFileSync(join(dir, 'turn'), TURN_SECRET);
writeFileSync(join(dir, 'key'), KEY);
const configFor = (engine: EngineName) => resolveSfuConfig({
  engine,
  mediasoup_workers: 1,
  namespace: NAMESPACE,
  listen_ip: HOST_IP,
  signal_port: 0,
  media_port_min: MEDIA_PORTS[0],
  media_port_max: MEDIA_PORTS[1],
  turn_urls: ['turn:127.0.0.1:3478?transport=udp'],
  turn_relay_ips: [RELAY_IP],
  turn_secret_file: join(dir, 'turn'),
  internal_key_file: join(dir, 'key'),
  drain_deadline_s: 1,
});

/** One HTTP request to the SFU (no keep-alive: no pooled socket outlives it). */
function http(sfu: RunningSfu, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST_IP, port: sfu.address.port, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A client's offer; bundled as browsers do (max-bundle), or werift's default (max-compat). */
async function realOffer(kinds: ('audio' | 'video')[], data: boolean, bundlePolicy: 'max-bundle' | 'max-compat'): Promise<string> {
  const pc = new RTCPeerConnection({ iceServers: [], iceInterfaceAddresses: { udp4: HOST_IP }, iceUseIpv6: false, icePortRange: CLIENT_PORTS, bundlePolicy });
  for (const kind of kinds) pc.addTransceiver(kind, { direction: 'sendonly' });
  if (data) pc.createDataChannel('chat');
  await pc.setLocalDescription(await pc.createOffer());
  const sdp = pc.localDescription!.sdp;
  await pc.close();
  return sdp;
}

// ---- one connection's life: its frames, the replies it is owed, how it ends ----
interface Segment {
  /** Sent while joined (one segment per join). */
  offers: number;
  answers: number;
  candidates: number;
  /** The first offer of the segment was a real one, no relay candidate before it. */
  firstReal?: boolean;
  /** Received. */
  gotAnswers: number;
  gotNegotiationFailed: number;
  gotAnswerErrors: number;
  /** The SFU offered (another peer's tracks): answers are then legitimate. Only checked loosely. */
  loose: boolean;
  /** Every reply of the chain was awaited before the segment ended: checked exactly. */
  settled: boolean;
}
const segment = (): Segment => ({ offers: 0, answers: 0, candidates: 0, gotAnswers: 0, gotNegotiationFailed: 0, gotAnswerErrors: 0, loose: false, settled: false });

type Expected = SyncExpect & { kind: string; n: number };

const openGens = new Set<Gen>();
let aborted = false;

class Gen {
  readonly ws: WebSocket;
  readonly expected: Expected[] = [];
  syncGot = 0;
  sent = 0;
  /** segments[0]: before the first join; then one per join, in order, for sent and received. */
  readonly segments: Segment[] = [segment()];
  private recvSegment = 0;
  turnCredentials = 0;
  roomClosed = 0;
  flood = false;
  floodCodes = new Map<string, number>();
  closed?: { code: number; reason: string };
  readonly closedP: Promise<void>;
  readonly openedP: Promise<boolean>;
  private waiters: (() => void)[] = [];
  private tokens = PACE.burst;
  private last = Date.now();
  private mismatched = false;

  constructor(
    readonly label: string,
    readonly sfu: RunningSfu,
    readonly st: ConnState,
    headers: Record<string, string>,
    /**
     * The kind of every frame this connection sends (a flood's frames not): the same seed, the
     * same hash. (Not the bytes: the real offers, and the frames made from them, are new werift
     * SDP in every run.)
     */
    private readonly trace: Hash,
  ) {
    const query = st.urlRoom ? `?room=${encodeURIComponent(st.urlRoom)}` : '';
    this.ws = new WebSocket(`ws://${HOST_IP}:${sfu.address.port}/signal${query}`, { headers });
    openGens.add(this);
    this.ws.on('message', (data, isBinary) => {
      this.onMessage(data as Buffer, isBinary);
      this.wake();
    });
    this.ws.on('error', (error) => {
      if (!this.closed) fail(`${this.label}: WebSocket error ${error.message}`);
    });
    this.closedP = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => {
        this.closed = { code, reason: reason.toString() };
        openGens.delete(this);
        this.wake();
        resolve();
      }),
    );
    this.openedP = new Promise((resolve) => {
      this.ws.once('open', () => {
        this.last = Date.now();
        resolve(true);
      });
      this.ws.once('unexpected-response', (req, res) => {
        fail(`${this.label}: upgrade refused with HTTP ${res.statusCode}`);
        req.destroy();
        resolve(false);
      });
      this.ws.once('close', () => resolve(false));
    });
  }

  private wake(): void {
    this.waiters.splice(0).forEach((w) => w());
  }

  /** Waits until `done()` or the timeout; false on the timeout. */
  async until(done: () => boolean, timeoutMs = WAIT_MS): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > end || aborted) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  get joined(): boolean {
    return this.st.joined;
  }

  private current(): Segment {
    return this.segments[this.segments.length - 1];
  }

  private received(): Segment {
    return this.segments[Math.min(this.recvSegment, this.segments.length - 1)];
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    const text = data.toString();
    if (isBinary) return fail(`${this.label}: a binary frame from the SFU`);
    if (text.includes(TURN_SECRET) || text.includes(KEY)) fail(`${this.label}: a secret in a reply`);
    let m: ServerMessage;
    try {
      m = JSON.parse(text) as ServerMessage;
    } catch {
      return fail(`${this.label}: a reply that is not JSON: ${text.slice(0, 100)}`);
    }
    bump(stats.replies, m.type === 'error' ? `error ${m.code}` : m.type);
    switch (m.type) {
      case 'error':
        return this.onError(m.code, m.message);
      case 'joined':
        if (m.room !== this.st.home || m.protocol_version !== 1 || !/^[0-9a-f]{12}$/.test(m.peer_id)) fail(`${this.label}: odd joined ${text.slice(0, 200)}`);
        this.onSync('joined', '');
        this.recvSegment++;
        return;
      case 'turn-credentials':
        this.turnCredentials++;
        if (!/^\d+:fuzzns:([A-Za-z0-9._@+-]{1,64}|h\.[A-Za-z0-9_-]{22})$/.test(m.username) || m.credential !== turnCredential(TURN_SECRET, m.username)) fail(`${this.label}: odd turn-credentials ${m.username}`);
        return;
      case 'answer':
        stats.answers++;
        this.received().gotAnswers++;
        return;
      case 'offer':
        this.received().loose = true;
        return;
      case 'room-closed':
        this.roomClosed++;
        return;
      case 'ice-candidate':
      case 'peer-joined':
      case 'peer-left':
        return;
      default:
        fail(`${this.label}: unexpected ${m.type} from the SFU`);
    }
  }

  private onError(code: string, message: unknown): void {
    if (!(ERROR_CODES as readonly string[]).includes(code)) return fail(`${this.label}: unknown error code ${code}`);
    if (typeof message !== 'string' || message === '' || message.length > 300 || STACK.test(message)) return fail(`${this.label}: unclear ${code} message ${JSON.stringify(message)?.slice(0, 300)}`);
    if (this.flood) return void bump(this.floodCodes, code);
    if (code === 'internal') return fail(`${this.label}: error internal "${message}"`);
    if (code === 'rate_limited') return fail(`${this.label}: rate limited although paced`);
    if (code === 'negotiation_failed') return void this.received().gotNegotiationFailed++;
    if (code === 'invalid_message' && message === ANSWER_WITHOUT_OFFER) return void this.received().gotAnswerErrors++;
    this.onSync(code, message);
  }

  /** A synchronous reply: must be the next one expected. */
  private onSync(code: string, message: string): void {
    const want = this.expected[this.syncGot++];
    if (this.flood || this.mismatched) return;
    if (!want) {
      this.mismatched = true;
      return fail(`${this.label}: an unexpected ${code} "${message.slice(0, 120)}" after ${this.expected.length} expected replies`);
    }
    const textOk = want.text !== undefined ? message === want.text : want.prefix !== undefined ? message.startsWith(want.prefix) : true;
    if (want.code !== code || !textOk) {
      this.mismatched = true;
      fail(`${this.label}: frame #${want.n} (${want.kind}) should get ${want.code} ${JSON.stringify(want.text ?? want.prefix ?? '')}, got ${code} ${JSON.stringify(message.slice(0, 160))}`);
    }
  }

  private async pace(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(PACE.burst, this.tokens + ((now - this.last) / 1000) * PACE.rate);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) / PACE.rate) * 1000));
    }
  }

  /** Sends one frame and records what it is owed. False if the connection is gone. */
  async send(frame: Frame, paced = true): Promise<boolean> {
    if (paced) await this.pace();
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) {
      if (this.flood) return false;
      fail(`${this.label}: closed by the SFU (${this.closed?.code ?? this.ws.readyState} ${this.closed?.reason ?? ''}) before frame #${this.sent} (${frame.kind})`);
      return false;
    }
    this.ws.send(frame.data, { binary: frame.binary });
    if (!this.flood) this.trace.update(`${frame.kind}\0`);
    this.sent++;
    if (this.flood) stats.floodFrames++;
    else stats.frames++;
    bump(stats.kinds, frame.kind);
    if (frame.sync) this.expected.push({ ...frame.sync, kind: frame.kind, n: this.sent });
    const seg = this.current();
    if (this.st.joined) {
      if (frame.async === 'offer') {
        if (seg.offers === 0) seg.firstReal = !!frame.real && seg.candidates === 0;
        seg.offers++;
      } else if (frame.async === 'answer') seg.answers++;
      else if (frame.async === 'candidate') seg.candidates++;
    }
    if (frame.effect === 'join') {
      this.st.joined = true;
      this.segments.push(segment());
    } else if (frame.effect === 'leave') this.st.joined = false;
    return true;
  }

  /**
   * Waits for every reply owed so far: the synchronous ones, and (joined) those of the
   * negotiation chain, by sending an answer nobody asked for and waiting for its error, which
   * comes after every earlier item of the chain. Returns the frames it sent (0 or 1).
   */
  async settle(): Promise<number> {
    let used = 0;
    const seg = this.current();
    if (this.st.joined) {
      if (!(await this.send(barrierFrame()))) return 1;
      used = 1;
    }
    const ok = await this.until(() => this.syncGot >= this.expected.length && (seg.loose || !this.st.joined || (this.recvSegment === this.segments.length - 1 && seg.gotAnswerErrors >= seg.answers)));
    if (!ok && !this.closed) fail(`${this.label}: replies missing after ${WAIT_MS} ms: ${this.syncGot}/${this.expected.length} synchronous (next: ${this.expected[this.syncGot]?.kind}), chain ${seg.gotAnswerErrors}/${seg.answers} answer errors`);
    if (ok && this.st.joined) seg.settled = true;
    return used;
  }

  async close(mode: 'polite' | 'terminate'): Promise<void> {
    if (mode === 'terminate') this.ws.terminate();
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, 'fuzz done');
    if (!(await this.until(() => !!this.closed))) {
      fail(`${this.label}: still open ${WAIT_MS} ms after close`);
      this.ws.terminate();
      await this.closedP;
    }
  }

  /** After the close: everything owed was received (`complete`) or a prefix of it. */
  verdict(complete: boolean, expectClose?: { code: number; reason?: string }): void {
    stats.generations++;
    bump(stats.closes, `${this.closed?.code}${this.closed?.reason ? ` ${this.closed.reason}` : ''}`);
    if (expectClose && (this.closed?.code !== expectClose.code || (expectClose.reason !== undefined && this.closed?.reason !== expectClose.reason))) {
      fail(`${this.label}: closed with ${this.closed?.code} "${this.closed?.reason}", expected ${expectClose.code} "${expectClose.reason ?? ''}"`);
    }
    if (this.flood) return;
    if (complete && this.syncGot < this.expected.length && !this.mismatched) {
      fail(`${this.label}: ${this.expected.length - this.syncGot} replies never came (first: frame #${this.expected[this.syncGot].n} ${this.expected[this.syncGot].kind} → ${this.expected[this.syncGot].code})`);
    }
    const joins = this.segments.length - 1;
    const joinedGot = Math.min(this.recvSegment, joins);
    if (this.turnCredentials > joinedGot || (complete && this.turnCredentials !== joins)) fail(`${this.label}: ${this.turnCredentials} turn-credentials for ${joins} joins`);
    for (const [i, s] of this.segments.entries()) {
      if (i === 0) continue;
      stats.segments++;
      if (s.loose) {
        stats.loose++;
        continue;
      }
      const where = `${this.label} segment ${i}`;
      if (s.gotAnswerErrors > s.answers) fail(`${where}: ${s.gotAnswerErrors} "${ANSWER_WITHOUT_OFFER}" for ${s.answers} answers`);
      if (s.gotAnswers + s.gotNegotiationFailed > s.offers + s.candidates) fail(`${where}: ${s.gotAnswers} answers + ${s.gotNegotiationFailed} negotiation_failed for ${s.offers} offers, ${s.candidates} relay candidates`);
      if (!s.settled) continue;
      stats.settled++;
      if (s.gotAnswerErrors !== s.answers) fail(`${where}: ${s.gotAnswerErrors} "${ANSWER_WITHOUT_OFFER}" for ${s.answers} answers (settled)`);
      if (s.gotAnswers + s.gotNegotiationFailed < s.offers) fail(`${where}: ${s.offers} offers got only ${s.gotAnswers} answers + ${s.gotNegotiationFailed} negotiation_failed (settled)`);
      if (s.firstReal && s.gotAnswers === 0) fail(`${where}: a real offer opened the segment and got no answer`);
    }
  }
}

/** Upgrades the SFU must refuse, with their status. */
async function refusedUpgrade(sfu: RunningSfu, rng: Rng, label: string): Promise<void> {
  const variants: [string, string, Record<string, string>, number][] = [
    ['no key', '/signal?room=r1', {}, 401],
    ['wrong key', '/signal?room=r1', { 'x-orama-internal-key': 'x'.repeat(KEY.length) }, 401],
    ['short key', '/signal?room=r1', { 'x-orama-internal-key': KEY.slice(0, -1) }, 401],
    ['other namespace', '/signal?room=r1', { 'x-orama-internal-key': KEY, 'x-orama-namespace': 'other' }, 403],
    ['bad room', `/signal?room=${rng.pick(['..%2Fx', 'a%20b', 'r'.repeat(65), '%F0', '', '-x'])}`, { 'x-orama-internal-key': KEY }, 400],
    ['wrong path', rng.pick(['/signalx', '/', '/rooms', '/signal/x']), { 'x-orama-internal-key': KEY }, 404],
  ];
  const [name, path, headers, status] = rng.pick(variants);
  const got = await new Promise<number | string>((resolve) => {
    const ws = new WebSocket(`ws://${HOST_IP}:${sfu.address.port}${path}`, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve('accepted');
    });
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      req.destroy();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', (e) => resolve(`error ${e.message}`));
  });
  bump(stats.upgrades, `${status} ${name}`);
  if (got !== status) fail(`${label}: upgrade (${name}, ${path}) answered ${got}, expected ${status}`);
}

const SUBJECTS = ['alice', 'user-42', 'bob@example.com', 'h.x', '', 'name with spaces', 'a:b:c', 'x'.repeat(300), '../../etc', 'umlaut'];

/** One connection: generations (sockets) one after the other until `quota` frames are sent. */
async function runConnection(sfu: RunningSfu, offers: RealOffers, ci: number, quota: number, rng: Rng, phase: string, deadline: number, trace: Hash): Promise<void> {
  let left = quota;
  let g = 0;
  // three connections flood once, in their first or second generation
  const floodAt = ci < 3 ? rng.int(1, 2) : 0;
  while (left > 0 && !aborted) {
    if (Date.now() > deadline) return fail(`${phase}/c${ci}: the deadline passed with ${left} frames to send`);
    g++;
    const label = `${phase}/c${ci}.g${g}`;
    if (rng.chance(0.06)) await refusedUpgrade(sfu, rng, label);
    const shared = rng.chance(0.35);
    const home = shared ? `s${rng.int(0, 3)}-${phase}` : `p${ci}-${g}-${phase}`;
    const st: ConnState = { joined: false, home, shared, urlRoom: rng.chance(0.6) ? home : undefined };
    const headers: Record<string, string> = { 'x-orama-internal-key': KEY };
    if (rng.chance(0.7)) headers['x-orama-namespace'] = NAMESPACE;
    if (rng.chance(0.7)) headers['x-orama-subject'] = rng.pick(SUBJECTS);
    const gen = new Gen(label, sfu, st, headers, trace);
    if (!(await gen.openedP)) {
      fail(`${label}: could not connect`);
      return;
    }

    // a flood: a burst far above the rate limit, on a fresh connection (its bucket full); its
    // frames are not counted in the budget (how many go out depends on when the close arrives)
    if (g === floodAt) {
      stats.floods++;
      gen.flood = true;
      // 60 frames pass (the burst), the next 200 are dropped: closed (1008) after about 260
      const cheap = ['{"type":"leave"}', '{oops', '{"type":"dance"}', '[]'];
      // (drawn before sending, so the seed's stream does not depend on when the close arrives)
      const frames = Array.from({ length: 300 }, () => rng.pick(cheap));
      const floodStart = Date.now();
      let sent = 0;
      while (sent < frames.length && !gen.closed) {
        for (let i = 0; i < 30 && sent < frames.length; i++, sent++) if (!(await gen.send({ kind: 'flood', data: frames[sent], binary: false }, false))) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (!(await gen.until(() => !!gen.closed))) {
        fail(`${label}: a flood of ${sent} frames did not get the connection closed`);
        await gen.close('terminate');
      }
      // at most one rate_limited error per second
      const limited = gen.floodCodes.get('rate_limited') ?? 0;
      const seconds = Math.ceil((Date.now() - floodStart) / 1000);
      if (limited < 1 || limited > seconds) fail(`${label}: ${limited} rate_limited errors for a flood of ${seconds} s (1 to ${seconds} expected)`);
      // the frames that passed got their errors (bad_json, unknown_type, invalid_message; leave none)
      const others = [...gen.floodCodes].filter(([code]) => code !== 'rate_limited');
      const passed = others.reduce((n, [, count]) => n + count, 0);
      if (others.some(([code]) => !['bad_json', 'unknown_type', 'invalid_message'].includes(code)) || passed > 60 + 20 * seconds) {
        fail(`${label}: a flood's frames got ${JSON.stringify(others)} (at most ${60 + 20 * seconds} frames pass)`);
      }
      gen.verdict(false, { code: 1008, reason: 'rate limit' });
      continue;
    }

    const length = Math.min(left, rng.int(5, 90));
    let end = rng.pick(['polite', 'polite', 'polite', 'leave', 'terminate', 'terminate-mid-offer', 'close-unsettled', 'ws-bound', 'ws-bound', 'delete']);
    if (length < 3) end = 'terminate';
    let used = 0;
    let ok = true;
    // the frames the end may send (at most 2: a barrier, then a leave, a closing frame or an offer)
    const reserve = end === 'terminate' || end === 'close-unsettled' ? 0 : 2;
    while (ok && used < length - reserve) {
      const frame = nextFrame(rng, st, offers);
      // half of the leaves wait for the chain first, so the segment they end is checked exactly
      if (frame.effect === 'leave' && rng.chance(0.5) && used + 2 <= length - reserve) used += await gen.settle();
      ok = await gen.send(frame);
      used++;
      if (rng.chance(0.08)) await sleep(rng.int(0, 15));
    }
    if (ok) {
      switch (end) {
        case 'polite':
        case 'leave':
          used += await gen.settle();
          if (end === 'leave' && st.joined && used < length) {
            await gen.send({ kind: 'leave', data: '{"type":"leave"}', binary: false, effect: 'leave' });
            used++;
          }
          await gen.close('polite');
          gen.verdict(true, { code: 1000, reason: 'fuzz done' });
          break;
        case 'terminate':
          await gen.close('terminate');
          gen.verdict(false);
          break;
        case 'terminate-mid-offer': {
          // ends the socket while the SFU applies a real offer (or right after the frame)
          const frame = realOfferFrame(st, offers);
          if (await gen.send(frame)) used++;
          await sleep(rng.int(0, 25));
          await gen.close('terminate');
          gen.verdict(false);
          break;
        }
        case 'close-unsettled':
          await gen.close('polite');
          gen.verdict(false, { code: 1000, reason: 'fuzz done' });
          break;
        case 'ws-bound': {
          // a frame above ws's 1 MiB bound (1009) or a text frame that is not UTF-8 (1007)
          used += await gen.settle();
          const frame = closingFrame(rng);
          if (gen.ws.readyState === WebSocket.OPEN) {
            await gen.send({ kind: frame.kind, data: frame.data, binary: frame.binary });
            used++;
          }
          if (!(await gen.until(() => !!gen.closed))) await gen.close('terminate');
          gen.verdict(true, { code: frame.code });
          break;
        }
        case 'delete': {
          used += await gen.settle();
          if (rng.chance(0.3)) {
            const res = await http(sfu, 'DELETE', `/rooms/${home}`);
            if (res.status !== 401) fail(`${label}: DELETE /rooms without the key answered ${res.status}`);
          }
          if (!st.joined || shared) {
            // nobody of this connection in the room: 404 (private), or leave the others alone (shared)
            if (!shared) {
              // 404; or 200 while the room's last peer (left just now) is still being closed
              const res = await http(sfu, 'DELETE', `/rooms/${home}`, { 'x-orama-internal-key': KEY });
              if (res.status !== 404 && !(res.status === 200 && res.body === JSON.stringify({ closed: home }))) fail(`${label}: DELETE of an empty room answered ${res.status} ${res.body}`);
            }
            await gen.close('polite');
            gen.verdict(true, { code: 1000, reason: 'fuzz done' });
            break;
          }
          stats.deletes++;
          const res = await http(sfu, 'DELETE', `/rooms/${home}`, { 'x-orama-internal-key': KEY });
          if (res.status !== 200 || res.body !== JSON.stringify({ closed: home })) fail(`${label}: DELETE /rooms/${home} answered ${res.status} ${res.body}`);
          if (!(await gen.until(() => !!gen.closed))) await gen.close('terminate');
          if (gen.roomClosed !== 1) fail(`${label}: ${gen.roomClosed} room-closed messages before the close`);
          gen.verdict(true, { code: 4001, reason: 'room closed' });
          break;
        }
      }
    } else {
      await gen.close('terminate');
      gen.verdict(false);
    }
    left -= used;
  }
}

/**
 * Every connection, concurrently; each its own stream of the seed. Returns a hash of the frames'
 * kinds (per connection, in connection order): a re-run with the seed prints the same.
 */
async function fuzz(sfu: RunningSfu, offers: RealOffers, phase: string, frames: number, seed: number, deadlineMs: number): Promise<string> {
  const root = new Rng(seed);
  const rngs = Array.from({ length: CONNECTIONS }, () => root.fork());
  const traces = rngs.map(() => createHash('sha256'));
  const deadline = Date.now() + deadlineMs;
  const all = Promise.all(rngs.map((rng, ci) => runConnection(sfu, offers, ci, frames / CONNECTIONS, rng, phase, deadline, traces[ci])));
  let timer: NodeJS.Timeout | undefined;
  const overdue = new Promise<'overdue'>((resolve) => (timer = setTimeout(() => resolve('overdue'), deadlineMs + WAIT_MS)));
  if ((await Promise.race([all, overdue])) === 'overdue') {
    fail(`${phase}: not done within ${(deadlineMs + WAIT_MS) / 1000} s; ${openGens.size} sockets open (${[...openGens].map((g) => g.label).slice(0, 10).join(', ')})`);
    aborted = true;
    for (const g of openGens) g.ws.terminate();
    await Promise.race([all, sleep(WAIT_MS)]);
  }
  clearTimeout(timer);
  return createHash('sha256').update(traces.map((h) => h.digest('hex')).join()).digest('hex').slice(0, 16);
}

/** A fresh client: join, a real offer (data channel and video), the answer applied, leave. */
async function freshClient(sfu: RunningSfu, t: Test): Promise<void> {
  // max-bundle: a werift CLIENT that offers max-compat (a transport per m-line) and gets a bundled
  // answer keeps the unused transport's UDP socket open after close()
  const pc = new RTCPeerConnection({ iceServers: [], iceInterfaceAddresses: { udp4: HOST_IP }, iceUseIpv6: false, icePortRange: CLIENT_PORTS, bundlePolicy: 'max-bundle' });
  try {
    pc.createDataChannel('chat');
    pc.addTransceiver('video', { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    const got: ServerMessage[] = [];
    const ws = new WebSocket(`ws://${HOST_IP}:${sfu.address.port}/signal?room=fresh`, { headers: { 'x-orama-internal-key': KEY, 'x-orama-namespace': NAMESPACE, 'x-orama-subject': 'fresh-user' } });
    ws.on('message', (d) => got.push(JSON.parse(String(d)) as ServerMessage));
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const next = async <T extends ServerMessage['type']>(type: T): Promise<Extract<ServerMessage, { type: T }> | undefined> => {
      const end = Date.now() + WAIT_MS;
      while (Date.now() < end) {
        const m = got.find((x) => x.type === type || x.type === 'error');
        if (m) {
          got.splice(got.indexOf(m), 1);
          if (m.type === type) return m as Extract<ServerMessage, { type: T }>;
          t.fail(`fresh client: error ${JSON.stringify(m)} while waiting for ${type}`);
          return undefined;
        }
        await sleep(20);
      }
      t.fail(`fresh client: no ${type} within ${WAIT_MS} ms`);
      return undefined;
    };
    ws.send(JSON.stringify({ type: 'join', room: 'fresh', display: { name: 'Fresh' } }));
    const joined = await next('joined');
    t.same(joined?.peers, [], 'fresh client: joined an empty room');
    t.match((await next('turn-credentials'))?.username, /^\d+:fuzzns:fresh-user$/, 'fresh client: TURN credentials for its subject');
    ws.send(JSON.stringify({ type: 'offer', sdp: pc.localDescription!.sdp }));
    const answer = await next('answer');
    t.match(answer?.sdp, /m=video[^]*m=application|m=application[^]*m=video/, 'fresh client: the answer has the video and the data channel');
    if (answer) await t.resolves(pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp }), 'fresh client: the answer applies');
    ws.send(JSON.stringify({ type: 'leave' }));
    ws.close(1000);
    await closed;
  } finally {
    await pc.close();
  }
}

/** Resolves when the SFU has no room and no peer left (false after WAIT_MS). */
async function sfuEmpty(sfu: RunningSfu): Promise<boolean> {
  const end = Date.now() + WAIT_MS;
  while (sfu.sfu.rooms.size > 0 || sfu.sfu.peerCount() > 0) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

const resources = () => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').sort();

/** Heap after forced GCs, once the resources are those of `like` (or WAIT_MS passed). */
async function measure(like?: string[]): Promise<{ heap: number; resources: string[] }> {
  const end = Date.now() + WAIT_MS;
  while (like && JSON.stringify(resources()) !== JSON.stringify(like) && Date.now() < end) await sleep(100);
  for (let i = 0; i < 6; i++) {
    gc();
    await sleep(30);
  }
  return { heap: process.memoryUsage().heapUsed, resources: resources() };
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

for (const engine of ENGINE_NAMES) t.test(`signaling fuzz (${engine} engine): ${FRAMES} frames on ${CONNECTIONS} connections, ORAMA_FUZZ_SEED=${SEED}`, async (t) => {
  const started = Date.now();
  stats = freshStats();
  failures.length = 0;
  failureCount = 0;
  const sfu = await startSfu(configFor(engine));
  t.teardown(() => sfu.close());
  const atStart = resources();
  const events = new Map<string, number>();
  sfu.sfu.log = (event) => void bump(events, event);
  const offers: RealOffers = { data: await realOffer([], true, 'max-compat'), media: await realOffer(['video', 'audio'], true, 'max-bundle'), audio: await realOffer(['audio'], false, 'max-compat') };

  // warm-up: the same fuzzer, a few hundred frames, then a fresh client; lazy init happens here
  await fuzz(sfu, offers, 'warmup', WARMUP_FRAMES, SEED ^ 0x5a5a5a5a, DEADLINE_MS);
  await freshClient(sfu, t);
  t.ok(await sfuEmpty(sfu), 'warm-up: no room and no peer left');
  const baseline = await measure(atStart);
  t.same(baseline.resources, atStart, 'warm-up: the active resources are those of the listening SFU');
  const warmupMs = Date.now() - started;
  const warmupFailures = failureCount;

  const fuzzStart = Date.now();
  const trace = await fuzz(sfu, offers, 'fuzz', FRAMES, SEED, DEADLINE_MS);
  const fuzzMs = Date.now() - fuzzStart;
  t.equal(openGens.size, 0, 'every fuzz socket is closed');
  const emptied = await sfuEmpty(sfu);
  t.ok(emptied, `no room and no peer left once the sockets are closed${emptied ? '' : ` (rooms: ${[...sfu.sfu.rooms.keys()].slice(0, 10).join(', ')})`}`);
  t.equal((await http(sfu, 'GET', '/health')).status, 200, 'the SFU is healthy');
  await freshClient(sfu, t);
  t.ok(await sfuEmpty(sfu), 'the fresh client left');
  const metrics = (await http(sfu, 'GET', '/metrics')).body;
  t.notMatch(metrics, /code="internal"/, 'no internal error counted by the SFU');

  const endState = await measure(baseline.resources);

  t.equal(stats.frames, WARMUP_FRAMES + FRAMES, `${WARMUP_FRAMES} + ${FRAMES} frames sent (and ${stats.floodFrames} in ${stats.floods} floods)`);
  t.same(crashes, [], 'no uncaught exception, no unhandled rejection');
  t.same(failures, [], `every frame got the reply the protocol gives it (${failureCount} failures, ${warmupFailures} in the warm-up)`);
  t.equal(events.get('peer-joined') ?? 0, events.get('peer-left') ?? 0, `every peer that joined left (${events.get('peer-joined') ?? 0})`);
  const growth = (endState.heap - baseline.heap) / baseline.heap;
  t.ok(Math.abs(growth) <= 0.1, `heap after GC within 10 % of the baseline: ${mb(baseline.heap)} → ${mb(endState.heap)} (${(growth * 100).toFixed(1)} %)`);
  t.same(endState.resources, baseline.resources, `active resources back at the baseline (${baseline.resources.join(', ') || 'none'})`);
  if (JSON.stringify(endState.resources) !== JSON.stringify(baseline.resources)) {
    const describe = (h: { constructor: { name: string }; address?: () => { address: string; port: number }; localPort?: number }) => {
      try {
        const a = h.address?.();
        return `${h.constructor.name}${a ? ` ${a.address}:${a.port}` : ''}`;
      } catch {
        return h.constructor.name;
      }
    };
    t.comment('handles now:', (process as unknown as { _getActiveHandles(): never[] })._getActiveHandles().map(describe).join(', '));
  }

  const top = (m: Map<string, number>, n = 80) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${k}=${v}`).join(' ');
  t.comment(`seed ${SEED}, hash of the frames' kinds ${trace}; warm-up ${(warmupMs / 1000).toFixed(1)} s, fuzz ${(fuzzMs / 1000).toFixed(1)} s, total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.comment(`heap baseline ${mb(baseline.heap)}, end ${mb(endState.heap)}; resources baseline [${baseline.resources.join(', ')}], end [${endState.resources.join(', ')}]`);
  t.comment(`generations ${stats.generations}, segments ${stats.segments} (checked exactly ${stats.settled}, loosely ${stats.loose}), floods ${stats.floods}, room deletes ${stats.deletes}, answers ${stats.answers}`);
  t.comment(`closes: ${top(stats.closes)}`);
  t.comment(`refused upgrades: ${top(stats.upgrades)}`);
  t.comment(`replies: ${top(stats.replies)}`);
  t.comment(`frames: ${top(stats.kinds)}`);
});
