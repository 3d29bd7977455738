// The product path end to end on the real test cluster: `orama namespace enable webrtc`, then
// two headless Chromiums — in a network namespace that reaches ONLY the nodes' public addresses —
// open https://ns-calls.orama.test/ as a person would: the name from the cluster's DNS (one
// browser) or pinned to a node (the other, so two different fronts and gateways serve them), the
// certificate trusted through an NSS database holding the cluster's CA, no certificate or
// insecure-origin flag. They join one room and call each other: signaling over wss through the
// front to the gateways and on to the room's SFU (affinity in rqlite), media through coturn to the
// SFU on its WireGuard address. Two more namespaces enabled at the same moment by two processes
// meanwhile get disjoint ports, come up healthy and touch no socket of the call (the front is
// never reloaded); then a call in each of them runs at the same time as the first. No log line of a front or a gateway holds the token. Then
// the room's SFU is stopped (systemctl stop → SIGTERM → server-draining) and both browsers carry
// on through another node's SFU. The namespaces run the default SFU engine, mediasoup (its worker
// shipped by roles/sfu, run by the SFU inside its unit's sandbox; the browsers publish simulcast
// layers), but the third, which runs werift: its call is the cluster call on the other engine.
// Last, the first namespace is switched to werift with its call running (enable --sfu-engine).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { sshExec } from '../../src/cluster/cluster.ts';
import { unitName } from '../../src/webrtc/names.ts';
import { clientNetns, clusterSuite } from '../helpers/cluster-suite.ts';
import { joinDemo, launchInNetns, mediaStats, sendChat, waitChat, waitEvent, waitMedia } from '../helpers/browser.ts';
import { frontCa, frontOf } from '../helpers/front.ts';
import { until } from '../helpers/poll.ts';

const NS = 'calls';
const OTHER = 'callsb';
const THIRD = 'callsc';
const ROOM = 'standup';


t.test('two browsers call each other through the cluster', async (t) => {
  const { cluster, orama, base } = await clusterSuite();
  t.equal(base.code, 0, 'node-base');
  const enable = await orama('namespace', 'enable', 'webrtc', '--namespace', NS);
  t.equal(enable.code, 0, enable.out.slice(-2000));
  t.teardown(() => orama('namespace', 'disable', 'webrtc', '--namespace', NS));
  const status = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout);
  t.equal(status.healthy, true, 'namespace healthy');
  const token = (await orama('token', 'mint', '--namespace', NS, '--subject', 'host', '--owner')).stdout.trim();
  const ca = frontCa(cluster.inventory);
  const host = new URL(status.url).hostname;
  t.equal(status.url, `https://ns-${NS}.orama.test`, 'webrtc-status names the namespace\'s https address');
  const front = frontOf(ca, status.url);
  const ip = (i: number) => status.nodes[i].public_ip;

  // The browsers' network: one veth on the cluster's public bridge, no default route.
  const { netns, nameserver, sh, remove } = clientNetns(cluster, 'ocall', 60);
  t.teardown(remove);
  t.match(sh(`ip -n ${netns} route get ${status.nodes[2].wg_ip} 2>&1 || true`), /unreachable/i, 'the browsers cannot reach any SFU address: media can only go through TURN');
  const answers = sh(`ip netns exec ${netns} kdig +short @${nameserver} ${host} A`).trim().split('\n').sort();
  t.same(answers, status.nodes.map((n: any) => n.public_ip).sort(), `from the browsers' network, ${host} resolves to every node's front`);

  const profile = mkdtempSync(join(tmpdir(), 'ocall-'));
  t.teardown(() => rmSync(profile, { recursive: true, force: true }));
  // ada: the name as the cluster's DNS answers it; bob: pinned to node3, as a hosts-file line would.
  const byDns: Browser = await launchInNetns(join(profile, 'a'), netns, { ca });
  const pinned: Browser = await launchInNetns(join(profile, 'b'), netns, { ca, resolve: { [host]: ip(2) } });
  t.teardown(async () => { await byDns.close(); await pinned.close(); });
  // The token in the fragment: never sent, so never in a request line or a log.
  const join_ = async (name: string, browser: Browser): Promise<Page> => (await joinDemo(browser, status.url, { room: ROOM, token, name }, { log: (l) => t.comment(l), console: true })).page;
  const ada = await join_('ada', byDns);
  const bob = await join_('bob', pinned);
  t.equal(await ada.evaluate(() => window.isSecureContext && location.protocol), 'https:', 'the demo page is a secure https origin (trusted CA, no flags)');
  t.notMatch(await ada.evaluate(() => location.href), /token/, 'the token is gone from the address bar once read');

  for (const [name, page] of [['ada', ada], ['bob', bob]] as const) {
    const s = await waitMedia(page, 1, 30000);
    t.ok(s.videos.some((v) => v.framesDecoded > 0), `${name} decodes the other's video (${s.videos.map((v) => v.framesDecoded)} frames)`);
    t.ok(s.audios.some((a) => a.totalAudioEnergy > 0), `${name} hears the other`);
    t.ok(s.pairs.length > 0 && s.pairs.every((p) => p.startsWith('relay/')), `${name}: selected pairs ${s.pairs} are relayed`);
  }
  await sendChat(ada, 'hello over the data channel');
  await waitChat(bob, 'hello over the data channel');
  t.pass('a data-channel message crossed the SFU');

  // Two more namespaces enabled at the same moment by two processes while the call runs: the
  // front's config never changes, so Caddy (which closes every proxied WebSocket on a reload) is
  // neither reloaded nor restarted; the two enables get disjoint ports and both come up healthy.
  const frontPid = async () => Promise.all([1, 2, 3].map((n) => sshExec(`node${n}`, 'systemctl show -p MainPID --value orama-front.service').then((r) => r.stdout.trim())));
  const pidsBefore = await frontPid();
  const framesOf = async (page: Page) => Math.max(0, ...(await mediaStats(page)).videos.map((v) => v.framesDecoded));
  const framesBefore = [await framesOf(ada), await framesOf(bob)];
  const enabledAt = Date.now();
  const [other, third] = await Promise.all([
    orama('namespace', 'enable', 'webrtc', '--namespace', OTHER),
    orama('namespace', 'enable', 'webrtc', '--namespace', THIRD, '--sfu-engine', 'werift'),
  ]);
  t.teardown(() => orama('namespace', 'disable', 'webrtc', '--namespace', THIRD));
  t.teardown(() => orama('namespace', 'disable', 'webrtc', '--namespace', OTHER));
  t.equal(other.code, 0, `namespace ${OTHER} enabled during the call${other.code ? `: ${other.out.slice(-1500)}` : ''}`);
  t.equal(third.code, 0, `namespace ${THIRD} enabled at the same moment by another process${third.code ? `: ${third.out.slice(-1500)}` : ''}`);
  const statusOf = async (ns: string) => JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', ns, '--json')).stdout);
  const [sb, sc] = [await statusOf(OTHER), await statusOf(THIRD)];
  t.ok(sb.healthy && sc.healthy, 'both healthy');
  t.equal(status.engine, 'mediasoup', `${NS} runs the default engine, mediasoup`);
  t.same(status.nodes.map((n: any) => n.sfu_engine), ['mediasoup', 'mediasoup', 'mediasoup'], `every node's SFU of ${NS} runs mediasoup`);
  t.equal(sc.engine, 'werift', `${THIRD} records the werift engine`);
  t.same(sc.nodes.map((n: any) => n.sfu_engine), ['werift', 'werift', 'werift'], `every node's SFU of ${THIRD} runs werift`);
  const portsOf = (s: any, node: number) => Object.values(s.nodes[node].ports as Record<string, string>).map((r) => r.split('-').map(Number));
  for (let n = 0; n < 3; n++) {
    const ranges = [status, sb, sc].flatMap((s) => portsOf(s, n));
    const overlap = ranges.some(([a1, b1 = a1], i) => ranges.some(([a2, b2 = a2], j) => i !== j && a1 <= b2 && a2 <= b1));
    t.notOk(overlap, `node${n + 1}: the three namespaces' port blocks are disjoint`);
  }
  t.same(await frontPid(), pidsBefore, 'no front was restarted');
  const otherHealth = await frontOf(ca, `https://ns-${OTHER}.orama.test`)(ip(1), '/health');
  t.equal(otherHealth.status, 200, `ns-${OTHER} answers through the same fronts at once`);
  await new Promise((r) => setTimeout(r, 2000));
  for (const [name, page, before] of [['ada', ada, framesBefore[0]], ['bob', bob, framesBefore[1]]] as const) {
    const events = await page.evaluate((t0) => (window as any).oramaDemo.events.filter((e: any) => e.t >= t0 && ['reconnected', 'draining', 'error'].includes(e.type)).map((e: any) => e.type), enabledAt);
    t.same(events, [], `${name}: no reconnect, drain or error while ${OTHER} was enabled: the signaling socket stayed open`);
    t.ok(await framesOf(page) > before, `${name}: video kept flowing`);
  }
  await sendChat(bob, 'still here');
  await waitChat(ada, 'still here');
  t.pass('the same signaling and data channel carry on');

  // A call in each of the two new namespaces at the same time, on the same three nodes (each its
  // own TURN listen ports, relay and media ranges): all three calls carry media.
  const framesA = [await framesOf(ada), await framesOf(bob)];
  const more: [string, Page][] = [];
  for (const s of [sb, sc]) {
    const tok = (await orama('token', 'mint', '--namespace', s.namespace, '--subject', 'host', '--owner')).stdout.trim();
    for (const [name, browser] of [[`${s.namespace}-1`, byDns], [`${s.namespace}-2`, pinned]] as const) {
      more.push([name, (await joinDemo(browser, s.url, { room: 'second', token: tok, name })).page]);
    }
  }
  for (const [name, page] of more) {
    const s = await waitMedia(page, 1, 30000);
    t.ok(s.videos.some((v) => v.framesDecoded > 0) && s.pairs.every((p) => p.startsWith('relay/')), `${name} decodes the other's video, relayed`);
  }
  t.ok(await framesOf(ada) > framesA[0] && await framesOf(bob) > framesA[1], `${NS}'s call carries on meanwhile`);
  for (const [, page] of more) await page.close();

  // The plain gateway port is gone: the gateways listen on sockets behind the front only.
  for (let n = 1; n <= 3; n++) {
    const pid = (await sshExec(`node${n}`, `systemctl show -p MainPID --value ${unitName('gateway', NS)}`)).stdout.trim();
    t.not(pid, '0', `node${n}: the gateway runs (pid ${pid})`);
    const tcp = (await sshExec(`node${n}`, `ss -Hltnp | grep -c 'pid=${pid},' || true`)).stdout.trim();
    t.equal(tcp, '0', `node${n}: the gateway listens on no TCP port`);
    const unix = (await sshExec(`node${n}`, `ss -Hlxp | grep 'pid=${pid},' | awk '{print $5}'`)).stdout.trim();
    t.equal(unix, `/run/orama-gateway-${NS}/http.sock`, `node${n}: only on its socket`);
  }

  // Stop the room's SFU: its clients are told server-draining and come back through another SFU.
  const rooms = (await front(ip(1), '/v1/webrtc/rooms', { headers: { authorization: `Bearer ${token}` } })).json();
  const first = rooms.rooms.find((r: any) => r.room_id === ROOM).sfu_node;
  t.ok(first, `room ${ROOM} is on ${first}`);
  t.equal(rooms.rooms.find((r: any) => r.room_id === ROOM).peers, 2, 'the room list shows both peers (from the SFU)');
  const before = Date.now();
  await sshExec(first, `systemctl stop orama-namespace-sfu@${NS}.service`);
  for (const [name, page] of [['ada', ada], ['bob', bob]] as const) {
    await waitEvent(page, 'draining', before, 20000);
    await waitEvent(page, 'reconnected', before, 20000);
    const s = await waitMedia(page, 1, 30000);
    t.ok(s.videos.some((v) => v.framesDecoded > 0), `${name} has video again after the move`);
  }
  const moved = (await front(ip(1), '/v1/webrtc/rooms', { headers: { authorization: `Bearer ${token}` } })).json();
  const second = moved.rooms.find((r: any) => r.room_id === ROOM).sfu_node;
  t.not(second, first, `the room moved from ${first} to ${second}`);
  await sshExec(first, `systemctl start orama-namespace-sfu@${NS}.service`);

  // Tokens never reach a log: not the JWT (WebSocket subprotocol, Authorization, the demo page's
  // fragment), not an API key (X-Api-Key), on any node, in the front's or the gateways' journal.
  const key = (await orama('apikey', 'create', '--namespace', NS, '--subject', 'logcheck')).stdout.trim();
  t.match(key, /^oak_/, 'an API key to look for');
  const viaKey = await front(ip(0), '/v1/webrtc/turn/credentials', { method: 'POST', headers: { 'x-api-key': key } });
  t.equal(viaKey.status, 200, 'the API key works through the front');
  await front(ip(0), `/v1/webrtc/rooms?token=${encodeURIComponent(token)}`); // a careless client's query string
  for (let n = 1; n <= 3; n++) {
    const journal = (await sshExec(`node${n}`, `journalctl -b --no-pager -o cat -u orama-front.service -u ${unitName('gateway', NS)}`)).stdout;
    t.ok(journal.includes('handled request'), `node${n}: the front logs requests`);
    t.notOk(journal.includes(token), `node${n}: no log line of the front or the gateway holds the JWT`);
    t.notOk(journal.includes(key), `node${n}: … nor the API key`);
  }

  // A live engine switch: `enable --sfu-engine werift` while ada and bob are in the call. enable
  // says what it does (every node's SFU restarts, on the new engine); the browsers are told
  // server-draining, join again, and call on through werift.
  const switchedAt = Date.now();
  const switched = await orama('namespace', 'enable', 'webrtc', '--namespace', NS, '--sfu-engine', 'werift');
  t.equal(switched.code, 0, `the engine switch applied${switched.code ? `: ${switched.out.slice(-1500)}` : ''}`);
  t.match(switched.out, /SFU engine mediasoup -> werift \(--sfu-engine\): every node's SFU restarts/, 'enable says every SFU restarts on the new engine');
  const onWerift = await statusOf(NS);
  t.equal(onWerift.healthy, true, `${NS} healthy after the switch`);
  t.same(onWerift.nodes.map((n: any) => n.sfu_engine), ['werift', 'werift', 'werift'], `every node's SFU of ${NS} now runs werift`);
  for (const [name, page] of [['ada', ada], ['bob', bob]] as const) {
    await waitEvent(page, 'reconnected', switchedAt, 60000);
    const growing = async () => {
      const a = await framesOf(page);
      await new Promise((r) => setTimeout(r, 1000));
      return (await framesOf(page)) > a;
    };
    const flowing = await until(`${name}'s frames growing on werift`, 30000, growing, Boolean, 0).catch(() => false);
    t.ok(flowing, `${name} joined again and decodes video on werift`);
    t.ok((await mediaStats(page)).pairs.every((p) => p.startsWith('relay/')), `${name}: still relayed`);
  }
  await sendChat(ada, 'on the other engine');
  await waitChat(bob, 'on the other engine');
  t.pass('the data channel works again after the switch');
});
