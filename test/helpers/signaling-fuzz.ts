// The frame generator of the signaling fuzzer (test/integration/sfu-fuzz.test.ts): a seeded PRNG
// and, for one connection's state, a random frame together with what the SFU must answer to it.
// Pure (no I/O): the same seed and the same sequence of states give the same frames.
//
// What the SFU answers (src/sfu/session.ts, docs/protocol.md):
// - synchronously, in frame order: `error` for a frame that fails parsing or validation, for a
//   binary frame, for offer/answer/ice-candidate before join (`not_joined`), for a second join
//   (`already_joined`), for a join naming another room than the URL; `joined` for a join;
// - later, from the peer's serialized negotiation chain: `answer` or `error negotiation_failed`
//   for an offer, `error invalid_message` ("answer without an outstanding SFU offer") for an
//   answer, maybe `error negotiation_failed` for a candidate the relay policy let through;
// - nothing: for leave, for a candidate the relay policy drops, for the end-of-candidates marker.
import { MAX_MESSAGE_BYTES, type ErrorCode } from '../../src/webrtc/protocol.ts';

// ---- PRNG: sfc32, seeded through splitmix32 ----
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    let s = seed >>> 0;
    const split = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.next();
  }
  /** [0, 1) */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) >>> 0;
    return t / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  /** A child generator: its own stream, derived from this one. */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 4294967296));
  }
}

/** The seed of a run: ORAMA_FUZZ_SEED (decimal or 0x-hex), else a fixed default. */
export function fuzzSeed(env = process.env.ORAMA_FUZZ_SEED): number {
  if (env === undefined || env === '') return 0x5eed14;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`ORAMA_FUZZ_SEED must be an integer in 0..2^32-1, got "${env}"`);
  return n;
}

// ---- what a frame must get back ----
/** A synchronous reply: an error (exact text, or a prefix) or `joined`. */
export interface SyncExpect {
  code: ErrorCode | 'joined';
  text?: string;
  prefix?: string;
}
/** A reply from the negotiation chain: see the header. */
export type AsyncKind = 'offer' | 'answer' | 'candidate';

export interface Frame {
  /** Family of the frame (counted in the report). */
  kind: string;
  data: string | Buffer;
  binary: boolean;
  sync?: SyncExpect;
  async?: AsyncKind;
  /** The frame is a real werift offer (its outcome must be an answer when it opens a segment). */
  real?: boolean;
  /** A join that succeeds / a leave of a joined peer. */
  effect?: 'join' | 'leave';
}

export interface ConnState {
  joined: boolean;
  /** The room of the URL (`?room=`); a join must name it. */
  urlRoom?: string;
  /** The room this connection joins. */
  home: string;
  /** Home is shared with other connections: no media offers there (they would make the SFU offer). */
  shared: boolean;
}

/** Real offers, made by werift clients at the start of the test. */
export interface RealOffers {
  data: string;
  media: string;
  audio: string;
}

export const RELAY_IP = '127.0.0.2';
const TEXT = {
  badJson: 'frame is not valid JSON',
  notObject: 'a message is an object with a string "type"',
  notJoined: 'join first',
  alreadyJoined: 'this connection already joined a room',
};
const bytes = (s: string) => Buffer.byteLength(s);
const tooLarge = (size: number): SyncExpect => ({ code: 'too_large', text: `frame of ${size} bytes exceeds ${MAX_MESSAGE_BYTES}` });
const invalid = (type: string): SyncExpect => ({ code: 'invalid_message', prefix: `${type}: /` });

const UNICODE = ['é', 'ß', 'Ω', 'ж', 'ע', 'ا', '中', '日本', '😀', '👩‍👩‍👧', '\u200b', '\u200f', 'e\u0301', '\ufeff', '\u2028', '𝔘', '\u0000', '\\', '"', '\n'];

function unicodeString(rng: Rng, maxCodePoints: number): string {
  let s = '';
  const n = rng.int(0, maxCodePoints);
  for (let i = 0; i < n; i++) s += rng.chance(0.5) ? rng.pick(UNICODE) : String.fromCharCode(rng.int(0x20, 0x7e));
  // at most maxCodePoints code points (a multi-code-point pick can overshoot)
  return [...s].slice(0, maxCodePoints).join('');
}

function junk(rng: Rng, length: number): string {
  const alphabet = 'abcxyz0189 =:;/\\"{}[]\r\n\t-_.@' + 'éΩ中😀';
  let s = '';
  while (s.length < length) s += alphabet[rng.int(0, alphabet.length - 1)];
  return s.slice(0, length);
}

const ipv4 = (rng: Rng) => `${rng.int(1, 254)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`;

// ---- SDP: garbage that still passes the schema (starts with v=0 and a newline) ----
function garbageSdp(rng: Rng, offers: RealOffers, st: ConnState): { kind: string; sdp: string } {
  const nl = rng.chance(0.8) ? '\r\n' : '\n';
  const choice = rng.int(0, st.shared ? 3 : 6);
  switch (choice) {
    case 0:
      return { kind: 'sdp-minimal', sdp: rng.pick(['v=0\r\n', 'v=0\n', 'v=0\r\n\r\n', 'v=0\r\no=\r\n', 'v=0\r\ns=-\r\nt=0 0\r\n']) };
    case 1: {
      const lines = ['v=0'];
      for (let i = rng.int(1, 40); i > 0; i--) lines.push(rng.chance(0.5) ? `${rng.pick(['a', 'm', 'c', 'o', 'b', 'k', 'zz', ''])}=${junk(rng, rng.int(0, 60))}` : junk(rng, rng.int(0, 80)));
      return { kind: 'sdp-junk-lines', sdp: lines.join(nl) + nl };
    }
    case 2: {
      // the data-only real offer cut short at a random place
      const cut = rng.int(6, offers.data.length - 1);
      return { kind: 'sdp-truncated-real', sdp: offers.data.slice(0, cut) };
    }
    case 3:
      return { kind: 'sdp-mutated-real', sdp: mutateSdp(rng, offers.data) };
    case 4:
      return { kind: 'sdp-mutated-media', sdp: mutateSdp(rng, rng.pick([offers.media, offers.audio])) };
    case 5: {
      // absurd m-lines: many of them, absurd ports, protocols, payload types, directions
      const lines = ['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0'];
      if (rng.chance(0.5)) lines.push(`a=group:BUNDLE ${Array.from({ length: rng.int(0, 50) }, (_, i) => String(i)).join(' ')}`);
      const count = rng.pick([1, 2, 17, 64, 200, 400]);
      for (let i = 0; i < count; i++) {
        const kind = rng.pick(['audio', 'video', 'application', 'text', 'message', '']);
        const port = rng.pick(['9', '0', '-1', '99999999', '65536', 'x', '1e9']);
        const proto = rng.pick(['UDP/TLS/RTP/SAVPF', 'RTP/AVP', 'UDP/DTLS/SCTP', 'TCP/BFCP', '']);
        const pt = rng.pick(['96', '111', '0', '-5', '128', '99999', 'webrtc-datachannel', '']);
        lines.push(`m=${kind} ${port} ${proto} ${pt}`);
        if (rng.chance(0.7)) lines.push(`a=mid:${rng.chance(0.8) ? i : junk(rng, 5)}`);
        if (rng.chance(0.6)) lines.push(`a=rtpmap:${pt} ${rng.pick(['VP8/90000', 'opus/48000/2', 'H265/90000', 'x/0', '/'])}`);
        if (rng.chance(0.5)) lines.push(`a=${rng.pick(['sendonly', 'recvonly', 'sendrecv', 'inactive', 'bogus'])}`);
        if (rng.chance(0.2)) lines.push(`a=ssrc:${rng.pick(['1', '4294967296', '-1', 'x'])} cname:${junk(rng, 4)}`);
        if (rng.chance(0.2)) lines.push(`a=extmap:${rng.pick(['1', '0', '15', '256', 'x'])} ${junk(rng, 10)}`);
        if (rng.chance(0.2)) lines.push(`a=candidate:1 1 udp 1 ${rng.chance(0.5) ? RELAY_IP : ipv4(rng)} ${rng.int(0, 70000)} typ relay`);
      }
      if (rng.chance(0.5)) lines.push('a=ice-ufrag:x', 'a=ice-pwd:y', `a=fingerprint:sha-256 ${junk(rng, 20)}`, 'a=setup:actpass');
      return { kind: 'sdp-absurd-mlines', sdp: lines.join(nl) + nl };
    }
    default:
      return { kind: 'sdp-unicode', sdp: `v=0${nl}${unicodeString(rng, 40)}${nl}m=video 9 UDP/TLS/RTP/SAVPF 96${nl}a=mid:${unicodeString(rng, 8)}${nl}` };
  }
}

/**
 * Line-level mutations of a real SDP: drop, duplicate, swap, corrupt numbers, inject junk. The
 * number of draws depends on nothing but the line count, which is the same in every run.
 */
function mutateSdp(rng: Rng, sdp: string): string {
  const lines = sdp.split('\r\n').filter(Boolean);
  for (let n = rng.int(1, 6); n > 0; n--) {
    const i = rng.int(1, lines.length - 1);
    switch (rng.int(0, 5)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, lines[i]);
        break;
      case 2: {
        const j = rng.int(1, lines.length - 1);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        break;
      }
      case 3: {
        // one draw, whatever the line: the real offers differ from run to run, the stream must not
        const number = rng.pick(['0', '-1', '4294967296', '99999999999999999999', 'NaN', '']);
        lines[i] = lines[i].replace(/\d+/g, number);
        break;
      }
      case 4:
        lines.splice(i, 0, `${rng.pick(['a', 'm', 'c'])}=${junk(rng, rng.int(0, 40))}`);
        break;
      default:
        lines[i] = lines[i].slice(0, rng.int(0, lines[i].length));
    }
    if (lines.length < 2) lines.push('m=');
  }
  return ['v=0', ...lines.slice(1)].join('\r\n') + '\r\n';
}

// ---- ICE candidates ----
function candidate(rng: Rng): { kind: string; value: unknown; allowed: boolean } {
  const mid = () => (rng.chance(0.7) ? { sdpMid: rng.pick(['0', '1', '2', 'zz', '', junk(rng, 32)]), sdpMLineIndex: rng.pick([0, 1, 5, 1024, null]) } : {});
  switch (rng.int(0, 5)) {
    case 0: // the relay address, garbage everywhere else: the policy lets it through
      return {
        kind: 'ice-relay-garbage',
        value: { candidate: `candidate:${junk(rng, 4).replace(/\s/g, '_')} ${rng.pick(['1', '2', 'x'])} ${rng.pick(['udp', 'tcp', 'sctp', 'ü'])} ${rng.pick(['1', '-1', 'zz', '99999999999'])} ${RELAY_IP} ${rng.pick(['5000', '0', '99999', 'port', '-3'])} typ ${rng.pick(['relay', 'host', 'prflx', '???'])}${rng.chance(0.5) ? ` raddr ${junk(rng, 6)} rport ${junk(rng, 3)}` : ''}`, ...mid() },
        allowed: true,
      };
    case 1: // a well-formed candidate on another address: dropped and counted
      return { kind: 'ice-host', value: { candidate: `candidate:1 1 udp 2122260223 ${ipv4(rng)} ${rng.int(1, 65535)} typ ${rng.pick(['host', 'srflx', 'relay'])} generation 0`, ...mid() }, allowed: false };
    case 2: // fewer than 8 fields, or no "typ": dropped
      return { kind: 'ice-garbage', value: { candidate: rng.chance(0.5) ? junk(rng, rng.int(1, 1024)) : `candidate:${unicodeString(rng, 30)}`, ...mid() }, allowed: false };
    case 3: // an mDNS name
      return { kind: 'ice-mdns', value: { candidate: `candidate:1 1 udp 1 ${junk(rng, 8).replace(/\W/g, 'a')}.local 5000 typ host`, usernameFragment: junk(rng, rng.int(0, 256)) }, allowed: false };
    case 4:
      return { kind: 'ice-end', value: null, allowed: false };
    default:
      return { kind: 'ice-empty', value: { candidate: '', ...mid() }, allowed: false };
  }
}

// ---- the protocol's messages, valid shape, in whatever state the connection is ----
function protocolFrame(rng: Rng, st: ConnState, offers: RealOffers): Frame {
  const r = rng.int(0, 39);
  const text = (kind: string, message: unknown, rest: Omit<Frame, 'kind' | 'data' | 'binary'> = {}): Frame => ({ kind, data: JSON.stringify(message), binary: false, ...rest });
  const beforeJoin = (f: Frame): Frame => (st.joined ? f : { ...f, sync: { code: 'not_joined', text: TEXT.notJoined }, async: undefined, real: undefined });
  if (r < 8) {
    const message: Record<string, unknown> = { type: 'join', room: st.home };
    if (rng.chance(0.6)) message.display = rng.chance(0.2) ? {} : { name: unicodeString(rng, 32) };
    if (st.joined) return text('join-again', message, { sync: { code: 'already_joined', text: TEXT.alreadyJoined } });
    return text('join', message, { sync: { code: 'joined' }, effect: 'join' });
  }
  if (r < 10 && st.urlRoom) {
    const other = `${st.home}x`;
    if (st.joined) return text('join-again', { type: 'join', room: other }, { sync: { code: 'already_joined', text: TEXT.alreadyJoined } });
    return text('join-other-room', { type: 'join', room: other }, { sync: { code: 'invalid_message', text: `join room "${other}" differs from the connection's room "${st.urlRoom}"` } });
  }
  if (r < 16) {
    const sdp = st.shared ? offers.data : rng.pick([offers.data, offers.media, offers.media, offers.audio]);
    return beforeJoin(text('offer-real', { type: 'offer', sdp }, { async: 'offer', real: true }));
  }
  if (r < 24) {
    const g = garbageSdp(rng, offers, st);
    return beforeJoin(text(`offer-${g.kind}`, { type: 'offer', sdp: g.sdp }, { async: 'offer' }));
  }
  if (r < 29) {
    const sdp = rng.chance(0.5) ? offers.data : garbageSdp(rng, offers, st).sdp;
    return beforeJoin(text('answer', { type: 'answer', sdp }, { async: 'answer' }));
  }
  if (r < 36) {
    const c = candidate(rng);
    return beforeJoin(text(c.kind, { type: 'ice-candidate', candidate: c.value }, c.allowed ? { async: 'candidate' } : {}));
  }
  return text(st.joined ? 'leave' : 'leave-not-joined', { type: 'leave' }, st.joined ? { effect: 'leave' } : {});
}

/** The frame a connection sends to settle its negotiation chain: an answer nobody asked for. */
export function barrierFrame(): Frame {
  return { kind: 'answer-barrier', data: JSON.stringify({ type: 'answer', sdp: 'v=0\r\n' }), binary: false, async: 'answer' };
}

/** A real offer (to end a connection abruptly while the SFU is applying it). */
export function realOfferFrame(st: ConnState, offers: RealOffers): Frame {
  const sdp = st.shared ? offers.data : offers.media;
  const f: Frame = { kind: 'offer-real', data: JSON.stringify({ type: 'offer', sdp }), binary: false, async: 'offer', real: true };
  return st.joined ? f : { ...f, sync: { code: 'not_joined', text: TEXT.notJoined }, async: undefined, real: undefined };
}

// ---- valid-shaped messages with one field broken: fail the schema ----
const WRONG = (rng: Rng): unknown => rng.pick<unknown>([5, -1, 1.5, 0, true, false, null, [], [1, 'x'], {}, { a: 1 }, '', 'x', '5']);

function schemaFrame(rng: Rng, st: ConnState): Frame {
  const f = (kind: string, type: string, message: unknown): Frame => ({ kind, data: JSON.stringify(message), binary: false, sync: invalid(type) });
  const raw = (kind: string, type: string, data: string): Frame => ({ kind, data, binary: false, sync: invalid(type) });
  switch (rng.int(0, 21)) {
    case 0:
      return f('join-no-room', 'join', { type: 'join' });
    case 1:
      return f('join-room-type', 'join', { type: 'join', room: rng.pick<unknown>([5, null, true, [], {}, ['r1']]) });
    case 2: {
      const room = rng.pick(['', '../etc', '-lead', '.x', 'a b', 'a/b', 'r'.repeat(65), 'naïve', '中文', '😀', 'a\u0000b', 'x%20y', 'a\nb']);
      return f('join-room-pattern', 'join', { type: 'join', room });
    }
    case 3:
      return f('join-display-name-long', 'join', { type: 'join', room: st.home, display: { name: rng.chance(0.5) ? 'n'.repeat(rng.int(65, 4000)) : '😀'.repeat(65) } });
    case 4:
      return f('join-display-type', 'join', { type: 'join', room: st.home, display: rng.pick<unknown>(['Ada', 5, null, [], { name: 5 }, { name: null }, { name: ['a'] }, { nick: 'x' }, { name: 'a', extra: 1 }]) });
    case 5:
      return f('join-extra-field', 'join', { type: 'join', room: st.home, [rng.pick(['extra', 'admin', 'subject', 'peer_id', 'constructor', '__proto__', 'ROOM'])]: WRONG(rng) });
    case 6:
      return f('offer-no-sdp', 'offer', { type: 'offer' });
    case 7:
      return f('offer-sdp-type', 'offer', { type: 'offer', sdp: rng.pick<unknown>([5, null, true, ['v=0\r\n'], { sdp: 'v=0\r\n' }]) });
    case 8: {
      const type = rng.pick(['offer', 'answer']);
      return f('sdp-pattern', type, { type, sdp: rng.pick(['', 'hello', ' v=0\r\n', 'v=1\r\n', 'V=0\r\n', 'v=0', 'v=0\t\r\n', `#${junk(rng, rng.int(1, 500))}`]) });
    }
    case 9:
      return f('answer-extra-field', 'answer', { type: 'answer', sdp: 'v=0\r\n', [rng.pick(['type2', 'sdpType', 'x'])]: WRONG(rng) });
    case 10:
      return f('ice-no-candidate', 'ice-candidate', { type: 'ice-candidate' });
    case 11:
      return f('ice-candidate-type', 'ice-candidate', { type: 'ice-candidate', candidate: rng.pick<unknown>(['candidate:1 1 udp 1 127.0.0.2 1 typ relay', 5, true, [], [null]]) });
    case 12:
      return f('ice-candidate-field-type', 'ice-candidate', { type: 'ice-candidate', candidate: { candidate: rng.pick<unknown>([5, null, true, [], {}]) } });
    case 13:
      return f('ice-candidate-missing', 'ice-candidate', { type: 'ice-candidate', candidate: rng.pick<unknown>([{}, { sdpMid: '0' }, { sdpMLineIndex: 0 }]) });
    case 14:
      return f('ice-candidate-long', 'ice-candidate', { type: 'ice-candidate', candidate: { candidate: 'c'.repeat(rng.int(1025, 20000)) } });
    case 15:
      return f('ice-mid-long', 'ice-candidate', { type: 'ice-candidate', candidate: { candidate: '', sdpMid: 'm'.repeat(rng.int(33, 300)) } });
    case 16: {
      // out of range, fractional, huge and Infinity (1e400 parses to Infinity) indexes
      const index = rng.pick(['-1', '1025', '1.5', '1e400', '-1e400', '"0"', '99999999999999999999', '-0.5', 'true']);
      return raw('ice-mline-index', 'ice-candidate', `{"type":"ice-candidate","candidate":{"candidate":"","sdpMLineIndex":${index}}}`);
    }
    case 17:
      return f('ice-ufrag-long', 'ice-candidate', { type: 'ice-candidate', candidate: { candidate: '', usernameFragment: 'u'.repeat(rng.int(257, 5000)) } });
    case 18:
      return f('ice-candidate-extra', 'ice-candidate', { type: 'ice-candidate', candidate: { candidate: '', [rng.pick(['foo', 'relatedAddress', 'port'])]: WRONG(rng) } });
    case 19:
      return f('leave-extra-field', 'leave', { type: 'leave', [rng.pick(['reason', 'room', 'x'])]: WRONG(rng) });
    case 20: {
      // duplicate keys: JSON.parse keeps the last, which makes the message invalid
      return raw('duplicate-keys', 'leave', `{"type":"join","room":"${st.home}","type":"leave"}`);
    }
    default: {
      // a deeply nested value in a field
      const depth = rng.int(100, 20_000);
      const nested = rng.chance(0.5) ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(Math.min(depth, 8000))}1${'}'.repeat(Math.min(depth, 8000))}`;
      return raw('deep-nesting-field', 'join', `{"type":"join","room":"${st.home}","display":${nested}}`);
    }
  }
}

const UNKNOWN_TYPES = ['dance', 'JOIN', 'Join', ' join', 'join ', 'join\u0000', 'offer\n', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'joined', 'error', 'turn-credentials', 'refresh-credentials', 'peer-joined', 'peer-left', 'room-closed', 'server-draining', 'echo', 'ping', 'subscribe', 'ice_candidate', 'candidate', '😀', 'قدم', 'ａｎｓｗｅｒ'];

function unknownTypeFrame(rng: Rng): Frame {
  let type = rng.pick(UNKNOWN_TYPES);
  if (rng.chance(0.2)) type = unicodeString(rng, rng.int(1, 60)) + 'zz';
  if (rng.chance(0.1)) type = 't'.repeat(rng.int(41, 60_000));
  const message: Record<string, unknown> = { type };
  if (rng.chance(0.5)) message.room = 'r1';
  if (rng.chance(0.3)) message.sdp = 'v=0\r\n';
  return { kind: 'unknown-type', data: JSON.stringify(message), binary: false, sync: { code: 'unknown_type', text: `unknown message type "${type.slice(0, 40)}"` } };
}

function badJsonFrame(rng: Rng, st: ConnState): Frame {
  const e: SyncExpect = { code: 'bad_json', text: TEXT.badJson };
  const valid = JSON.stringify(rng.pick<unknown>([{ type: 'join', room: st.home }, { type: 'leave' }, { type: 'offer', sdp: 'v=0\r\n' }, { type: 'ice-candidate', candidate: null }]));
  switch (rng.int(0, 4)) {
    case 0: // truncated: a proper prefix of an object's text is never JSON
      return { kind: 'truncated-json', data: valid.slice(0, rng.int(0, valid.length - 1)), binary: false, sync: e };
    case 1:
      return { kind: 'not-json', data: rng.pick(['{oops', "{'type':'leave'}", '{"type":"leave",}', '{"type":"leave"}}', '{"type":NaN}', '{"type":undefined}', '{"sdpMLineIndex":Infinity}', '// {"type":"leave"}', '\ufeff{"type":"leave"}', '{"type":"le\u0001ave"}', 'leave', '{"type":"leave"} {"type":"leave"}', '\u0000']), binary: false, sync: e };
    case 2: // unbalanced deep nesting
      return { kind: 'deep-unbalanced', data: '['.repeat(rng.int(1000, 60_000)), binary: false, sync: e };
    case 3:
      return { kind: 'junk-text', data: junk(rng, rng.int(1, 3000)).replace(/^[\s"{[\d-]/, '#'), binary: false, sync: e };
    default:
      return { kind: 'empty-frame', data: rng.pick(['', ' ', '\n', '\t\r\n']), binary: false, sync: e };
  }
}

function notObjectFrame(rng: Rng): Frame {
  const data = rng.pick(['[]', '[{"type":"leave"}]', '5', '-0', '1e400', '"join"', 'null', 'true', '{}', '{"room":"r1"}', '{"type":5}', '{"type":null}', '{"type":["join"]}', '{"type":{"join":1}}', '{"type":true}', '{"__proto__":{"type":"leave"}}']);
  return { kind: 'not-an-object', data, binary: false, sync: { code: 'invalid_message', text: TEXT.notObject } };
}

/** Frames around the 64 KiB limit: just above (too_large, in bytes: multi-byte padding) or exactly at it. */
function sizeFrame(rng: Rng, st: ConnState): Frame {
  const pad = rng.pick(['x', 'é', '中', '😀']);
  if (rng.chance(0.55)) {
    // just above the limit, or far above it (below ws's 1 MiB bound)
    const target = rng.chance(0.7) ? MAX_MESSAGE_BYTES + rng.int(1, 8) : rng.int(MAX_MESSAGE_BYTES + 1, 1000 * 1024);
    const head = rng.pick(['{"type":"offer","sdp":"v=0\\r\\n', '{"type":"join","room":"r1","display":{"name":"', '{"type":"', '']);
    let data = head + pad.repeat(Math.ceil((target - bytes(head)) / bytes(pad)));
    if (head) data += '"}';
    return { kind: 'too-large', data, binary: false, sync: tooLarge(bytes(data)) };
  }
  // exactly MAX_MESSAGE_BYTES: processed like any frame
  if (rng.chance(0.5) && !st.shared) {
    const head = '{"type":"offer","sdp":"v=0\\r\\na=';
    const tail = '\\r\\n"}';
    const data = head + 'x'.repeat(MAX_MESSAGE_BYTES - bytes(head) - bytes(tail)) + tail;
    if (!st.joined) return { kind: 'at-limit-offer', data, binary: false, sync: { code: 'not_joined', text: TEXT.notJoined } };
    return { kind: 'at-limit-offer', data, binary: false, async: 'offer' };
  }
  const head = '{"type":"join","room":"r1","display":{"name":"';
  const tail = '"}}';
  const room = MAX_MESSAGE_BYTES - bytes(head) - bytes(tail);
  let name = pad.repeat(Math.floor(room / bytes(pad)));
  name += 'x'.repeat(room - bytes(name));
  return { kind: 'at-limit-join', data: head + name + tail, binary: false, sync: invalid('join') };
}

function binaryFrame(rng: Rng, st: ConnState): Frame {
  switch (rng.int(0, 4)) {
    case 0: {
      const b = Buffer.alloc(rng.int(1, 2000));
      for (let i = 0; i < b.length; i++) b[i] = rng.int(0, 255);
      b[0] = rng.int(0x80, 0xff); // never valid UTF-8 at the start: not JSON
      return { kind: 'binary-random', data: b, binary: true, sync: { code: 'bad_json', text: TEXT.badJson } };
    }
    case 1: {
      const message = rng.pick<Record<string, unknown>>([{ type: 'leave' }, { type: 'join', room: st.home }, { type: 'ice-candidate', candidate: null }, { type: 'offer', sdp: 'v=0\r\n' }]);
      return { kind: 'binary-valid', data: Buffer.from(JSON.stringify(message)), binary: true, sync: { code: 'invalid_message', prefix: `a binary frame holding "${message.type}"` } };
    }
    case 2:
      return { kind: 'binary-empty', data: Buffer.alloc(0), binary: true, sync: { code: 'bad_json', text: TEXT.badJson } };
    case 3: {
      const size = rng.int(MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES + 5000);
      return { kind: 'binary-too-large', data: Buffer.alloc(size, 0x20), binary: true, sync: tooLarge(size) };
    }
    default:
      return { kind: 'binary-unknown-type', data: Buffer.from('{"type":"dance"}'), binary: true, sync: { code: 'unknown_type', text: 'unknown message type "dance"' } };
  }
}

/** Valid messages in an odd spelling: whitespace around, escaped characters, key order. */
function oddSpellingFrame(rng: Rng, st: ConnState, offers: RealOffers): Frame {
  const base = protocolFrame(rng, st, offers);
  if (base.binary || typeof base.data !== 'string') return base;
  const message = JSON.parse(base.data) as Record<string, unknown>;
  let data: string;
  switch (rng.int(0, 2)) {
    case 0:
      data = `${rng.pick([' ', '\n', '\t', '\r\n '])}${base.data}${rng.pick([' ', '\n', '\t\t'])}`;
      break;
    case 1: // every character of "type" escaped
      data = base.data.replace(/"type":"([^"]*)"/, (_m, v: string) => `"\\u0074\\u0079\\u0070\\u0065":"${[...v].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`);
      break;
    default: // keys reversed, pretty-printed
      data = JSON.stringify(Object.fromEntries(Object.entries(message).reverse()), null, rng.int(1, 4));
  }
  return { ...base, kind: `odd-${base.kind}`, data };
}

/**
 * One random frame for a connection in state `st`. Frames that change the state (a join that
 * succeeds, a leave of a joined peer) say so in `effect`: the caller updates `st`.
 */
export function nextFrame(rng: Rng, st: ConnState, offers: RealOffers): Frame {
  const r = rng.int(0, 99);
  if (r < 34) return protocolFrame(rng, st, offers);
  if (r < 56) return schemaFrame(rng, st);
  if (r < 62) return unknownTypeFrame(rng);
  if (r < 71) return badJsonFrame(rng, st);
  if (r < 75) return notObjectFrame(rng);
  if (r < 83) return sizeFrame(rng, st);
  if (r < 91) return binaryFrame(rng, st);
  return oddSpellingFrame(rng, st, offers);
}

/** Frames after which the SFU's WebSocket closes the connection (ws's own bounds). */
export function closingFrame(rng: Rng): { kind: string; data: string | Buffer; binary: boolean; code: number } {
  if (rng.chance(0.5)) return { kind: 'over-ws-max-payload', data: 'x'.repeat(1024 * 1024 + rng.int(1, 4096)), binary: rng.chance(0.3), code: 1009 };
  // a text frame that is not UTF-8
  return { kind: 'text-not-utf8', data: Buffer.from([0x7b, 0x22, rng.pick([0xc3, 0xff, 0xed, 0xf8]), 0x28, 0x22, 0x7d]), binary: false, code: 1007 };
}
