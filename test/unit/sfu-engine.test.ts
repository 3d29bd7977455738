// The werift engine's connections, below the room logic:
// - ICE gathering, which every join and rejoin waits for (the SFU answers only once its
//   candidates are gathered): connections gathering at the same moment — two clients rejoining
//   together after their SFU was lost — each get a candidate of their own in the media range, and
//   gathering asks no STUN server (werift's default is stun.l.google.com: a DNS lookup that, on a
//   node without public DNS, held every answer for 5 s).
// - A connection closed while werift applies a description (found by the signaling fuzzer,
//   test/integration/sfu-fuzz.test.ts): werift 0.24.4 keeps going after close() and never closes
//   the ICE socket it then gathers, or never settles the operation. A peer that leaves (or whose
//   socket drops) while its offer is being answered did that in the SFU: one UDP socket per such
//   peer for the life of the process. close() now waits for the operation.
import { execFileSync } from 'node:child_process';
import dns from 'node:dns';
import { networkInterfaces } from 'node:os';
import t from 'tap';
import { RTCPeerConnection } from 'werift';
import { Serial, WeriftEngine } from '../../src/sfu/engine-werift.ts';
import { settles } from '../helpers/poll.ts';

// werift never gathers on loopback: this host's first non-loopback IPv4 address (traffic to it
// stays inside the kernel; nothing is sent in this test anyway).
const defaultDev = /dev (\S+)/.exec(execFileSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' }))?.[1];
const hostIp = [...(defaultDev ? (networkInterfaces()[defaultDev] ?? []) : []), ...Object.values(networkInterfaces()).flat()]
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
if (!hostIp) throw new Error('no non-loopback IPv4 address on this host: the engine needs one to bind');

/** Consecutive UDP ports free on hostIp now (other suites may hold some of this area). */
async function freeBlock(from: number, to: number, size: number): Promise<[number, number]> {
  const { createSocket } = await import('node:dgram');
  const free = (port: number) => new Promise<boolean>((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind({ port, address: hostIp }, () => s.close(() => resolve(true)));
  });
  for (let start = from; start + size - 1 <= to; start += size) {
    let ok = true;
    for (let p = start; p < start + size && ok; p++) ok = await free(p);
    if (ok) return [start, start + size - 1];
  }
  throw new Error(`no ${size} free UDP ports on ${hostIp} in ${from}-${to}`);
}
const N = 24;
const RANGE = await freeBlock(39300, 39999, N);

/** A client's offer (audio, video, data channel), made without gathering (no socket, no STUN). */
async function clientOffer(): Promise<{ sdp: string; close: () => Promise<void> }> {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('audio', { direction: 'sendonly' });
  pc.addTransceiver('video', { direction: 'sendonly' });
  pc.createDataChannel('chat');
  const offer = await pc.createOffer();
  return { sdp: offer.sdp, close: () => pc.close() };
}

t.test('gatherings run one at a time, but one that never settles holds up the next only so long', async (t) => {
  const serial = new Serial(100);
  const order: string[] = [];
  const slow = serial.run(async () => { await new Promise((r) => setTimeout(r, 30)); order.push('slow'); });
  const next = serial.run(async () => { order.push('next'); });
  await Promise.all([slow, next]);
  t.same(order, ['slow', 'next'], 'in order: the second waits for the first');
  void serial.run(() => new Promise(() => {})); // a gathering that hangs
  const started = Date.now();
  const alive = setTimeout(() => {}, 5000); // the bound's timer is unref'd (it never holds the SFU up)
  await serial.run(async () => undefined);
  clearTimeout(alive);
  t.ok(Date.now() - started >= 90, 'the one after it waited for the bound');
  t.pass('and then ran: the engine answers again');
});

t.test('connections answering at the same moment each get their own port; no STUN lookup', async (t) => {
  const lookups: string[] = [];
  const real = dns.promises.lookup;
  (dns.promises as { lookup: unknown }).lookup = (host: string, ...rest: unknown[]) => {
    lookups.push(host);
    return (real as (...a: unknown[]) => unknown).call(dns.promises, host, ...rest);
  };
  t.teardown(() => { (dns.promises as { lookup: unknown }).lookup = real; });

  const engine = new WeriftEngine({
    listenIp: hostIp, portRange: RANGE, isAllowedRemote: () => false, onDroppedIceCheck: () => {}, publisherBitrate: 500_000,
  });
  const offers = await Promise.all(Array.from({ length: N }, clientOffer));
  const connections = offers.map(() => engine.createConnection());
  t.teardown(async () => {
    await Promise.all(connections.map((c) => c.close()));
    await Promise.all(offers.map((o) => o.close()));
  });
  const answers = await Promise.all(connections.map((c, i) => c.acceptOffer(offers[i].sdp)));

  const ports = answers.map((sdp) => {
    const c = /^a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host/m.exec(sdp);
    return c ? { ip: c[1], port: Number(c[2]) } : null;
  });
  t.same(ports.filter((p) => p === null).length, 0, 'every answer carries a host candidate');
  t.ok(ports.every((p) => p?.ip === hostIp), `all on listen_ip ${hostIp}`);
  const used = ports.map((p) => p!.port);
  t.equal(new Set(used).size, N, `${N} different ports (${used.join(', ')})`);
  t.ok(used.every((p) => p >= RANGE[0] && p <= RANGE[1]), `all in the media range ${RANGE.join('-')}`);
  t.same(lookups, [], 'no name was looked up while gathering (no STUN server is asked)');
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const udpSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;


t.test('a connection closed while it applies an offer settles the offer and leaves no socket open', async (t) => {
  const client = new RTCPeerConnection({ iceServers: [], iceInterfaceAddresses: { udp4: hostIp }, iceUseIpv6: false, icePortRange: [39720, 39729] });
  client.addTransceiver('video', { direction: 'sendonly' });
  client.createDataChannel('chat');
  await client.setLocalDescription(await client.createOffer());
  const offer = client.localDescription!.sdp;
  await client.close();
  t.ok(await settles(() => udpSockets() === 0, 5000), 'no UDP socket before the test');

  const engine = new WeriftEngine({ listenIp: hostIp, portRange: [39730, 39799], isAllowedRemote: () => false, onDroppedIceCheck: () => {}, publisherBitrate: 1_000_000 });
  // close() after 0..11 turns of the event loop, and after 0..11 microtasks: each a different
  // point inside setRemoteDescription / createAnswer / setLocalDescription
  const outcomes: string[] = [];
  for (const step of ['immediate', 'microtask'] as const) {
    for (let turns = 0; turns < 12; turns++) {
      const connection = engine.createConnection();
      const outcome = connection.acceptOffer(offer).then(
        () => 'answered',
        (e: Error) => `failed: ${e.message}`,
      );
      for (let i = 0; i < turns; i++) await (step === 'immediate' ? new Promise((resolve) => setImmediate(resolve)) : Promise.resolve());
      await connection.close();
      outcomes.push(`${step} ${turns}: ${await Promise.race([outcome, sleep(5000).then(() => 'still pending after 5 s')])}`);
    }
  }
  t.same(outcomes.filter((o) => o.includes('pending')), [], 'every offer settled');
  t.ok(await settles(() => udpSockets() === 0, 5000), `no UDP socket left open (${udpSockets()} open)`);
});
