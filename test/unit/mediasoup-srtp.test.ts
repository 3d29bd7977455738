// The SRTP port in our mediasoup patch (.ci/mediasoup/*.patch: the worker's SrtpSession on
// Debian's libsrtp2): every crypto suite the worker offers, both ways between two workers, with
// the payload checked byte for byte after encrypt → decrypt; on the wire the payload is not the
// plaintext and carries the suite's authentication tag; a wrong key delivers nothing (and the
// worker lives on). Real browsers negotiate their suite through DTLS in sfu-browsers.test.ts.
// Loopback only: fake RTP → PlainTransport → producer → consumer on an SRTP PlainTransport →
// SRTP PlainTransport on the other worker → producer → consumer on a plain PlainTransport → sink.
import t from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { mediasoupWorker } from '../../src/namespace/artifacts.ts';
import { settles } from '../helpers/poll.ts';

const SUITES: { suite: types.SrtpCryptoSuite; tag: number }[] = [
  { suite: 'AEAD_AES_256_GCM', tag: 16 },
  { suite: 'AEAD_AES_128_GCM', tag: 16 },
  { suite: 'AES_CM_128_HMAC_SHA1_80', tag: 10 },
  { suite: 'AES_CM_128_HMAC_SHA1_32', tag: 4 },
];
const CODECS: types.RouterRtpCodecCapability[] = [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 }];
const LISTEN: types.TransportListenInfo = { protocol: 'udp', ip: '127.0.0.1' };
const PACKETS = 20;
const PAYLOAD = 40;

const workerBin = await mediasoupWorker();
const workers = [
  await mediasoup.createWorker({ workerBin, logLevel: 'error' }),
  await mediasoup.createWorker({ workerBin, logLevel: 'error' }),
];
let died = '';
for (const w of workers) w.on('died', (e) => (died = e.message));
const sockets: Socket[] = [];
t.teardown(() => {
  for (const s of sockets) s.close();
  for (const w of workers) w.close();
});

async function socket(): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  return s;
}

/** A payload that tells packet i and suite apart. */
function payload(i: number, salt: number): Buffer {
  return Buffer.from(Array.from({ length: PAYLOAD }, (_, k) => (i * 7 + k * 13 + salt) & 0xff));
}

function rtp(i: number, ssrc: number, salt: number): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = 100;
  header.writeUInt16BE(1000 + i, 2);
  header.writeUInt32BE(960 * i, 4);
  header.writeUInt32BE(ssrc, 8);
  return Buffer.concat([header, payload(i, salt)]);
}

/** An RTP packet's payload (after CSRCs and a header extension). RTCP (PT 72–76) is undefined. */
function rtpPayload(packet: Buffer): Buffer | undefined {
  const pt = packet[1] & 0x7f;
  if (pt >= 72 && pt <= 76) return undefined;
  let offset = 12 + (packet[0] & 0x0f) * 4;
  if (packet[0] & 0x10) offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  return packet.subarray(offset);
}

interface Path {
  source: types.PlainTransport;
  encrypting: types.PlainTransport;
  decrypting: types.PlainTransport;
  routers: types.Router[];
}

/**
 * A source producer on router `from` (worker `from`), its consumer on an SRTP transport that
 * talks to an SRTP transport on the other worker; returns both ends. `key` overrides the
 * parameters the decrypting end is told the encrypting end uses (a wrong key).
 */
async function srtpPath(suite: types.SrtpCryptoSuite, from: number, ssrc: number, wrongKey = false): Promise<Path & { decrypted?: types.Producer }> {
  const r1 = await workers[from].createRouter({ mediaCodecs: CODECS });
  const r2 = await workers[1 - from].createRouter({ mediaCodecs: CODECS });
  const source = await r1.createPlainTransport({ listenInfo: LISTEN, rtcpMux: true, comedia: true });
  const producer = await source.produce({ kind: 'audio', rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc }] } });
  const encrypting = await r1.createPlainTransport({ listenInfo: LISTEN, rtcpMux: true, comedia: false, enableSrtp: true, srtpCryptoSuite: suite });
  const decrypting = await r2.createPlainTransport({ listenInfo: LISTEN, rtcpMux: true, comedia: false, enableSrtp: true, srtpCryptoSuite: suite });
  const told = { ...encrypting.srtpParameters! };
  if (wrongKey) {
    const key = Buffer.from(told.keyBase64, 'base64');
    key[0] ^= 0xff;
    told.keyBase64 = key.toString('base64');
  }
  await encrypting.connect({ ip: '127.0.0.1', port: decrypting.tuple.localPort, srtpParameters: decrypting.srtpParameters });
  await decrypting.connect({ ip: '127.0.0.1', port: encrypting.tuple.localPort, srtpParameters: told });
  const forwarded = await encrypting.consume({ producerId: producer.id, rtpCapabilities: r1.rtpCapabilities });
  const decrypted = await decrypting.produce({ kind: 'audio', rtpParameters: forwarded.rtpParameters });
  return { source, encrypting, decrypting, decrypted, routers: [r1, r2] };
}

async function sendAll(to: types.PlainTransport, ssrc: number, salt: number): Promise<void> {
  const src = await socket();
  for (let i = 0; i < PACKETS; i++) {
    await new Promise((resolve) => src.send(rtp(i, ssrc, salt), to.tuple.localPort, '127.0.0.1', resolve));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}


for (const [index, { suite }] of SUITES.entries()) {
  for (const from of [0, 1]) {
    t.test(`${suite}: worker ${from + 1} encrypts, worker ${2 - from} decrypts; payloads arrive intact`, async (t) => {
      const ssrc = 1_000_000 + index * 10 + from;
      const salt = index * 2 + from;
      const path = await srtpPath(suite, from, ssrc);
      const sink = await socket();
      const received: Buffer[] = [];
      sink.on('message', (m) => {
        const p = rtpPayload(m);
        if (p) received.push(Buffer.from(p));
      });
      const out = await path.routers[1].createPlainTransport({ listenInfo: LISTEN, rtcpMux: true, comedia: false });
      await out.connect({ ip: '127.0.0.1', port: sink.address().port });
      await out.consume({ producerId: path.decrypted!.id, rtpCapabilities: path.routers[1].rtpCapabilities });
      await sendAll(path.source, ssrc, salt);
      await settles(() => received.length >= PACKETS, 3000);
      t.equal(received.length, PACKETS, `all ${PACKETS} packets through encrypt and decrypt`);
      const expected = new Set(Array.from({ length: PACKETS }, (_, i) => payload(i, salt).toString('hex')));
      t.ok(received.every((p) => expected.has(p.toString('hex'))), 'every payload byte for byte as sent');
      const stats = await path.decrypting.getStats();
      t.ok((stats[0]?.rtpBytesReceived ?? 0) > 0, 'the decrypting transport counted SRTP bytes in');
      for (const r of path.routers) r.close();
    });
  }

  t.test(`${suite}: on the wire the payload is ciphertext with a ${SUITES[index].tag}-byte tag`, async (t) => {
    const ssrc = 2_000_000 + index;
    const r1 = await workers[0].createRouter({ mediaCodecs: CODECS });
    const source = await r1.createPlainTransport({ listenInfo: LISTEN, rtcpMux: true, comedia: true });
    const producer = await source.produce({ kind: 'audio', rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc }] } });
    const encrypting = await r1.createPlainTransport({ listenInfo: LISTEN, rtcpMux: true, comedia: false, enableSrtp: true, srtpCryptoSuite: suite });
    const peer = await r1.createPlainTransport({ listenInfo: LISTEN, rtcpMux: true, comedia: false, enableSrtp: true, srtpCryptoSuite: suite });
    const spy = await socket();
    const wire: Buffer[] = [];
    spy.on('message', (m) => rtpPayload(m) && wire.push(Buffer.from(m)));
    await encrypting.connect({ ip: '127.0.0.1', port: spy.address().port, srtpParameters: peer.srtpParameters });
    // The consumer's RTP as it would leave in the clear: same header, then the payload.
    const consumer = await encrypting.consume({ producerId: producer.id, rtpCapabilities: r1.rtpCapabilities });
    await sendAll(source, ssrc, 100 + index);
    await settles(() => wire.length >= PACKETS, 3000);
    t.ok(wire.length >= PACKETS * 0.9, `SRTP packets reached the spy (${wire.length})`);
    const plain = new Set(Array.from({ length: PACKETS }, (_, i) => payload(i, 100 + index).toString('hex')));
    const headerLength = (m: Buffer) => m.length - rtpPayload(m)!.length;
    t.ok(wire.every((m) => m.readUInt32BE(8) === consumer.rtpParameters.encodings![0].ssrc), 'the header stays readable (SRTP encrypts the payload only)');
    t.ok(wire.every((m) => !plain.has(rtpPayload(m)!.subarray(0, PAYLOAD).toString('hex'))), 'no payload is the plaintext');
    t.ok(wire.every((m) => m.length - headerLength(m) === PAYLOAD + SUITES[index].tag), `each payload is ${PAYLOAD} bytes plus the ${SUITES[index].tag}-byte tag`);
    r1.close();
  });
}

t.test('a wrong key: the decrypting worker drops every packet and lives on', async (t) => {
  const ssrc = 3_000_000;
  const path = await srtpPath('AES_CM_128_HMAC_SHA1_80', 0, ssrc, true);
  const sink = await socket();
  let received = 0;
  sink.on('message', (m) => rtpPayload(m) && received++);
  const out = await path.routers[1].createPlainTransport({ listenInfo: LISTEN, rtcpMux: true, comedia: false });
  await out.connect({ ip: '127.0.0.1', port: sink.address().port });
  await out.consume({ producerId: path.decrypted!.id, rtpCapabilities: path.routers[1].rtpCapabilities });
  await sendAll(path.source, ssrc, 200);
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(received, 0, 'nothing decrypted with the wrong key');
  const stats = await path.decrypted!.getStats();
  t.equal(stats.reduce((n, s) => n + (s.packetCount ?? 0), 0), 0, 'the producer behind it saw no packet');
  t.equal(died, '', 'both workers alive');
  t.ok((await workers[1].getResourceUsage()).ru_utime >= 0, 'the decrypting worker still answers');
  for (const r of path.routers) r.close();
});
