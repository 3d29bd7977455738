// A small TURN client: the TURN wall's attack tests and `orama monitor`'s TURN probe (run on a node)
// use it. The attack tests drive a real coturn with real
// gateway credentials (TURN REST usernames, see src/webrtc/credentials.ts) and assert what it
// refuses: relays to internal addresses, TCP relays, IPv4-mapped IPv6 peers, stale credentials.
// Browsers and wrtc hide these answers, so this speaks the protocol itself:
//   RFC 5389 STUN framing, long-term credentials (401 REALM/NONCE challenge, then USERNAME, REALM,
//     NONCE, MESSAGE-INTEGRITY = HMAC-SHA1 keyed with MD5(user:realm:password), FINGERPRINT;
//     one retry on 438 Stale Nonce),
//   RFC 5766 TURN: Allocate, Refresh, CreatePermission, Send/Data indications,
//   RFC 6062 TCP relays: Allocate with REQUESTED-TRANSPORT 6, Connect, ConnectionBind,
// over UDP (retransmitting within the timeout) or TCP (STUN messages are framed by their header's
// length field; ChannelData frames are skipped, this client binds no channels).
// Nothing throws on a refusal: every request resolves to a TurnResult, and a request nobody
// answers resolves to { ok: false, code: 0, reason: 'timeout' } (a closed TCP connection gives
// code 0, 'closed'), so a test can assert "refused with code X" or "dropped". Responses are not
// integrity-checked: this is a probe, not a production client.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import zlib from 'node:zlib';

export type TurnResult<T = {}> = ({ ok: true } & T) | { ok: false; code: number; reason: string };
export interface TurnClientOptions {
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
  username: string;
  password: string;
  /** Per request (including the 401/438 retries), default 3000 ms. */
  timeoutMs?: number;
}
export interface Address {
  ip: string;
  port: number;
}

const MAGIC = 0x2112a442;
// method | class (all methods used here are < 0x10, so no bit interleaving is needed)
const M = { binding: 0x001, allocate: 0x003, refresh: 0x004, send: 0x006, data: 0x007, createPermission: 0x008, connect: 0x00a, connectionBind: 0x00b };
const INDICATION = 0x010, SUCCESS = 0x100, CLASS_MASK = 0x110; // error responses are 0x110
const A = {
  username: 0x0006, integrity: 0x0008, errorCode: 0x0009, lifetime: 0x000d, xorPeer: 0x0012, data: 0x0013, realm: 0x0014,
  nonce: 0x0015, xorRelayed: 0x0016, transport: 0x0019, xorMapped: 0x0020, connectionId: 0x002a, fingerprint: 0x8028,
};

type Attr = [type: number, value: Buffer];
interface Msg {
  type: number;
  tid: Buffer;
  attrs: Map<number, Buffer>; // first occurrence of each attribute
}

// zlib.crc32 exists from Node 20.15; older Node 20 gets the table version.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
  return n >>> 0;
});
const crc32: (b: Buffer) => number =
  (zlib as { crc32?: (b: Buffer) => number }).crc32 ??
  ((b) => {
    let c = 0xffffffff;
    for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  });

const u32 = (n: number) => Buffer.from([n >>> 24, n >>> 16, n >>> 8, n].map((x) => x & 0xff));

/** One STUN message; with a key, MESSAGE-INTEGRITY is added; FINGERPRINT always. */
function encode(type: number, tid: Buffer, attrs: Attr[], key?: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const [t, v] of attrs) {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(t);
    h.writeUInt16BE(v.length, 2);
    parts.push(h, v, Buffer.alloc((4 - (v.length % 4)) % 4));
  }
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type);
  header.writeUInt32BE(MAGIC, 4);
  tid.copy(header, 8);
  let msg = Buffer.concat([header, ...parts]);
  const append = (t: number, size: number, value: (m: Buffer) => Buffer) => {
    msg.writeUInt16BE(msg.length - 20 + 4 + size, 2); // the length counts the attribute being added
    const h = Buffer.alloc(4);
    h.writeUInt16BE(t);
    h.writeUInt16BE(size, 2);
    msg = Buffer.concat([msg, h, value(msg)]);
  };
  if (key) append(A.integrity, 20, (m) => createHmac('sha1', key).update(m).digest());
  append(A.fingerprint, 4, (m) => u32(crc32(m) ^ 0x5354554e));
  return msg;
}

function decode(b: Buffer): Msg | undefined {
  if (b.length < 20 || b.readUInt32BE(4) !== MAGIC || (b[0]! & 0xc0) !== 0) return undefined;
  const end = Math.min(b.length, 20 + b.readUInt16BE(2));
  const attrs = new Map<number, Buffer>();
  for (let o = 20; o + 4 <= end; ) {
    const t = b.readUInt16BE(o), len = b.readUInt16BE(o + 2);
    if (!attrs.has(t)) attrs.set(t, b.subarray(o + 4, o + 4 + len));
    o += 4 + len + ((4 - (len % 4)) % 4);
  }
  return { type: b.readUInt16BE(0), tid: Buffer.from(b.subarray(8, 20)), attrs };
}

/** IPv4 or IPv6 text (including ::ffff:a.b.c.d) to bytes. */
function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!net.isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  let s = ip.replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    s = s.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [], t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** XOR-*-ADDRESS value (family 0x01 IPv4, 0x02 IPv6; port and address XORed with cookie + tid). */
function xorAddr(a: Address, tid: Buffer): Buffer {
  const ip = ipBytes(a.ip), pad = Buffer.concat([u32(MAGIC), tid]);
  const v = Buffer.alloc(4 + ip.length);
  v[1] = ip.length === 4 ? 1 : 2;
  v.writeUInt16BE(a.port ^ (MAGIC >>> 16), 2);
  ip.forEach((x, i) => (v[4 + i] = x ^ pad[i]!));
  return v;
}

function parseXorAddr(v: Buffer | undefined, tid: Buffer): Address | undefined {
  if (!v || v.length < 8) return undefined;
  const pad = Buffer.concat([u32(MAGIC), tid]);
  const raw = Buffer.from(v.subarray(4, v[1] === 2 ? 20 : 8).map((x, i) => x ^ pad[i]!));
  const port = v.readUInt16BE(2) ^ (MAGIC >>> 16);
  if (raw.length === 4) return { ip: [...raw].join('.'), port };
  const hex = Array.from({ length: 8 }, (_, i) => raw.readUInt16BE(i * 2).toString(16)).join(':');
  return { ip: new URL(`http://[${hex}]/`).hostname.slice(1, -1), port }; // canonical (compressed) form
}

const uint32 = (v: Buffer | undefined) => (v && v.length >= 4 ? v.readUInt32BE(0) : 0);

export class TurnClient {
  private readonly pending = new Map<string, { resolve: (m: Msg | undefined, reason?: string) => void }>();
  private readonly dataHandlers: ((peer: Address, data: Buffer) => void)[] = [];
  private realm?: Buffer;
  private nonce?: Buffer;
  /** 438 Stale Nonce answers that were retried with the new nonce (so a test can see they happened). */
  staleNonces = 0;
  private allocated = false;
  private closed = false;
  private sock?: net.Socket; // TCP only
  private detached = false; // TCP data connection after ConnectionBind: no more STUN framing

  private constructor(
    private readonly o: TurnClientOptions,
    private readonly write: (b: Buffer) => void,
    private readonly end: () => void,
  ) {}

  static async open(o: TurnClientOptions): Promise<TurnClient> {
    if (o.transport === 'udp') {
      const sock = dgram.createSocket(net.isIPv6(o.host) ? 'udp6' : 'udp4');
      const c = new TurnClient(o, (b) => sock.send(b, o.port, o.host), () => sock.close());
      sock.on('message', (b) => c.receive(b));
      sock.on('error', () => {}); // e.g. ICMP unreachable: the request simply times out
      await new Promise<void>((resolve) => sock.bind(0, resolve));
      return c;
    }
    const sock = net.connect({ host: o.host, port: o.port });
    sock.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => (sock.destroy(), reject(new Error(`TURN TCP connect to ${o.host}:${o.port} timed out`))), o.timeoutMs ?? 3000);
      sock.once('connect', () => (clearTimeout(timer), resolve()));
      sock.once('error', (e) => (clearTimeout(timer), reject(e)));
    });
    const c = new TurnClient(o, (b) => sock.write(b), () => sock.destroy());
    c.sock = sock;
    c.frameTcp(sock);
    sock.on('error', () => {});
    sock.on('close', () => c.fail('closed'));
    return c;
  }

  /** Splits a TCP stream into STUN messages (20 + length) and ChannelData frames (4 + length, padded). */
  private frameTcp(sock: net.Socket): void {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4) {
        const len = buf.readUInt16BE(2);
        const total = (buf[0]! & 0xc0) === 0 ? 20 + len : 4 + len + ((4 - (len % 4)) % 4);
        if (buf.length < total) break;
        if ((buf[0]! & 0xc0) === 0) this.receive(buf.subarray(0, total));
        buf = buf.subarray(total);
        if (this.detached) {
          // the rest of the stream is the peer's raw bytes: hand them back to the socket's reader
          sock.off('data', onData);
          sock.pause();
          if (buf.length) sock.unshift(buf);
          return;
        }
      }
    };
    sock.on('data', onData);
  }

  private receive(b: Buffer): void {
    const m = decode(b);
    if (!m) return;
    if (m.type === (M.connectionBind | SUCCESS)) this.detached = true;
    if (m.type === (M.data | INDICATION)) {
      const peer = parseXorAddr(m.attrs.get(A.xorPeer), m.tid), data = m.attrs.get(A.data);
      if (peer && data) for (const cb of this.dataHandlers) cb(peer, Buffer.from(data));
      return;
    }
    this.pending.get(m.tid.toString('hex'))?.resolve(m);
  }

  private fail(reason: string): void {
    this.closed = true;
    for (const p of [...this.pending.values()]) p.resolve(undefined, reason);
  }

  /** One transaction: resolves to the response, or undefined on timeout/close. UDP retransmits. */
  private transact(msg: Buffer, tid: Buffer, timeoutMs: number): Promise<{ m?: Msg; reason: string }> {
    return new Promise((resolve) => {
      const key = tid.toString('hex');
      const timers: NodeJS.Timeout[] = [];
      const done = (m: Msg | undefined, reason = 'timeout') => {
        timers.forEach(clearTimeout);
        this.pending.delete(key);
        resolve({ m, reason });
      };
      if (this.closed) return done(undefined, 'closed');
      this.pending.set(key, { resolve: done });
      this.write(msg);
      if (this.o.transport === 'udp') for (let at = 250, step = 250; at < timeoutMs; step *= 2, at += step) timers.push(setTimeout(() => this.write(msg), at));
      timers.push(setTimeout(() => done(undefined), timeoutMs));
    });
  }

  /** A request with long-term credentials: the 401 challenge and one 438 Stale Nonce retry. */
  private async request(method: number, attrs: Attr[] | ((tid: Buffer) => Attr[]), auth = true, timeoutMs = this.o.timeoutMs ?? 3000): Promise<TurnResult<{ m: Msg }>> {
    const deadline = Date.now() + timeoutMs;
    let staleRetried = false, challenged = false; // at most one retry of each kind
    for (;;) {
      const tid = randomBytes(12);
      const list = typeof attrs === 'function' ? attrs(tid) : attrs;
      let msg: Buffer;
      const { realm: r0, nonce: n0 } = this, authed = auth && !!r0 && !!n0;
      if (authed) {
        const key = createHash('md5').update(`${this.o.username}:${r0}:${this.o.password}`).digest();
        msg = encode(method, tid, [...list, [A.username, Buffer.from(this.o.username)], [A.realm, r0], [A.nonce, n0]], key);
      } else msg = encode(method, tid, list);
      const { m, reason } = await this.transact(msg, tid, Math.max(1, deadline - Date.now()));
      if (!m) return { ok: false, code: 0, reason };
      if ((m.type & CLASS_MASK) === SUCCESS) return { ok: true, m };
      const e = m.attrs.get(A.errorCode);
      const code = e && e.length >= 4 ? (e[2]! & 7) * 100 + e[3]! : 0;
      const result = { ok: false as const, code, reason: e ? e.subarray(4).toString('utf8').replace(/[\s\0]+$/, '') : 'error response without ERROR-CODE' };
      const [realm, nonce] = [m.attrs.get(A.realm), m.attrs.get(A.nonce)];
      if (realm) this.realm = Buffer.from(realm);
      if (nonce) this.nonce = Buffer.from(nonce);
      // A 401 to an unauthenticated request is the challenge; to an authenticated one it is final.
      if (auth && code === 401 && !authed && !challenged && realm && nonce) {
        challenged = true;
        continue;
      }
      if (auth && code === 438 && !staleRetried && nonce) {
        staleRetried = true;
        this.staleNonces++;
        continue;
      }
      return result;
    }
  }

  /** STUN Binding (no credentials): the client's address as the server sees it. Also a liveness probe. */
  async binding(timeoutMs?: number): Promise<TurnResult<{ mapped: Address }>> {
    const r = await this.request(M.binding, [], false, timeoutMs);
    return r.ok ? { ok: true, mapped: parseXorAddr(r.m.attrs.get(A.xorMapped), r.m.tid)! } : r;
  }

  async allocate(o: { relay?: 'udp' | 'tcp'; lifetime?: number } = {}): Promise<TurnResult<{ relayed: Address; mapped?: Address; lifetime: number }>> {
    const attrs: Attr[] = [[A.transport, Buffer.from([o.relay === 'tcp' ? 6 : 17, 0, 0, 0])]];
    if (o.lifetime !== undefined) attrs.push([A.lifetime, u32(o.lifetime)]);
    const r = await this.request(M.allocate, attrs);
    if (!r.ok) return r;
    this.allocated = true;
    const { attrs: a, tid } = r.m;
    return { ok: true, relayed: parseXorAddr(a.get(A.xorRelayed), tid)!, mapped: parseXorAddr(a.get(A.xorMapped), tid), lifetime: uint32(a.get(A.lifetime)) };
  }

  /** peerIp: IPv4, IPv6 or IPv4-mapped IPv6 (::ffff:a.b.c.d, sent as family 0x02). The port is irrelevant. */
  async createPermission(peerIp: string): Promise<TurnResult> {
    const r = await this.request(M.createPermission, (tid) => [[A.xorPeer, xorAddr({ ip: peerIp, port: 0 }, tid)]]);
    return r.ok ? { ok: true } : r;
  }

  /** Send indication: no response; dropped by the server without a permission for peer.ip. */
  send(peer: Address, data: Buffer): void {
    const tid = randomBytes(12);
    if (!this.closed) this.write(encode(M.send | INDICATION, tid, [[A.xorPeer, xorAddr(peer, tid)], [A.data, data]]));
  }

  /** Data indications: what peers sent to the relayed address. */
  onData(cb: (peer: Address, data: Buffer) => void): void {
    this.dataHandlers.push(cb);
  }

  /** RFC 6062 Connect: the server opens a TCP connection from the relayed address to peer. */
  async connect(peer: Address): Promise<TurnResult<{ connectionId: number }>> {
    const r = await this.request(M.connect, (tid) => [[A.xorPeer, xorAddr(peer, tid)]]);
    return r.ok ? { ok: true, connectionId: uint32(r.m.attrs.get(A.connectionId)) } : r;
  }

  /**
   * RFC 6062 ConnectionBind on a new TCP connection to the server: on success that socket becomes
   * the raw data stream to the peer of connectionId. It is returned paused (bytes that arrived
   * with the response are kept): attach 'data', then resume(). The caller must destroy it.
   */
  async connectionBind(connectionId: number): Promise<TurnResult<{ socket: net.Socket }>> {
    if (this.o.transport !== 'tcp') return { ok: false, code: 0, reason: 'ConnectionBind needs a TCP control connection' };
    const data = await TurnClient.open(this.o);
    // Authenticated straight away with the control connection's realm and nonce: coturn 4.6.1
    // closed the data connection when its first ConnectionBind came without MESSAGE-INTEGRITY.
    [data.realm, data.nonce] = [this.realm, this.nonce];
    const r = await data.request(M.connectionBind, [[A.connectionId, u32(connectionId)]]);
    if (!r.ok) return data.end(), r;
    return { ok: true, socket: data.sock! };
  }

  async refresh(lifetime: number): Promise<TurnResult<{ lifetime: number }>> {
    const r = await this.request(M.refresh, [[A.lifetime, u32(lifetime)]]);
    if (r.ok && lifetime === 0) this.allocated = false;
    return r.ok ? { ok: true, lifetime: uint32(r.m.attrs.get(A.lifetime)) } : r;
  }

  /** Best-effort refresh(0) of an allocation, then closes the socket. */
  async close(): Promise<void> {
    if (this.allocated && !this.closed) await this.refresh(0).catch(() => {});
    this.fail('closed');
    try {
      this.end();
    } catch {} // already closed
  }
}
