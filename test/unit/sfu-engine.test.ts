// The werift engine's connection, closed while werift applies a description (found by the
// signaling fuzzer, test/integration/sfu-fuzz.test.ts): werift 0.24.4 keeps going after close()
// and never closes the ICE socket it then gathers, or never settles the operation. A peer that
// leaves (or whose socket drops) while its offer is being answered did that in the SFU: one UDP
// socket per such peer for the life of the process. close() now waits for the operation.
import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import t from 'tap';
import { RTCPeerConnection } from 'werift';
import { WeriftEngine } from '../../src/sfu/engine-werift.ts';

const defaultDev = /dev (\S+)/.exec(execFileSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' }))?.[1];
const hostIp = [...(defaultDev ? (networkInterfaces()[defaultDev] ?? []) : []), ...Object.values(networkInterfaces()).flat()]
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
if (!hostIp) throw new Error('no non-loopback IPv4 address on this host: the engine needs one to bind');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const udpSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;

async function until(done: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await sleep(50);
  return done();
}

t.test('a connection closed while it applies an offer settles the offer and leaves no socket open', async (t) => {
  const client = new RTCPeerConnection({ iceServers: [], iceInterfaceAddresses: { udp4: hostIp }, iceUseIpv6: false, icePortRange: [39720, 39729] });
  client.addTransceiver('video', { direction: 'sendonly' });
  client.createDataChannel('chat');
  await client.setLocalDescription(await client.createOffer());
  const offer = client.localDescription!.sdp;
  await client.close();
  t.ok(await until(() => udpSockets() === 0, 5000), 'no UDP socket before the test');

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
  t.ok(await until(() => udpSockets() === 0, 5000), `no UDP socket left open (${udpSockets()} open)`);
});
