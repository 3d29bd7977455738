// The product path end to end on the real test cluster: `orama namespace enable webrtc`, then
// two headless Chromiums — in a network namespace that reaches ONLY the nodes' public addresses —
// load the demo page from two different nodes' gateways, join one room and call each other:
// signaling through the gateways to the room's SFU (affinity in rqlite), media through coturn to
// the SFU on its WireGuard address. Then the room's SFU is stopped (systemctl stop → SIGTERM →
// server-draining) and both browsers carry on through another node's SFU.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { sshExec } from '../../src/cluster/cluster.ts';
import { clientNetns, clusterSuite } from '../helpers/cluster-suite.ts';
import { launchInNetns, sendChat, waitChat, waitEvent, waitMedia } from '../helpers/browser.ts';

const NS = 'calls';
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
  const gateway = (i: number) => `http://${status.nodes[i].public_ip}:${Number(status.nodes[i].ports.sfu_signal) + 1000}`;

  // The browsers' network: one veth on the cluster's public bridge, no default route.
  const { netns, sh, remove } = clientNetns(cluster, 'ocall', 60);
  t.teardown(remove);
  t.match(sh(`ip -n ${netns} route get ${status.nodes[2].wg_ip} 2>&1 || true`), /unreachable/i, 'the browsers cannot reach any SFU address: media can only go through TURN');

  const profile = mkdtempSync(join(tmpdir(), 'ocall-'));
  const browser: Browser = await launchInNetns(profile, netns, [gateway(0), gateway(2)]);
  t.teardown(async () => { await browser.close(); rmSync(profile, { recursive: true, force: true }); });
  const join_ = async (name: string, gw: string): Promise<Page> => {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => t.comment(`${name} page error: ${e.message}`));
    page.on('console', (m) => t.comment(`${name} console: ${m.text()}`));
    page.on('requestfailed', (r) => t.comment(`${name} request failed: ${r.url()} ${r.failure()?.errorText}`));
    await page.goto(`${gw}/v1/webrtc/client/demo.html?${new URLSearchParams({ room: ROOM, token, name, autojoin: '1' })}`);
    await waitEvent(page, 'joined', 0, 20000);
    return page;
  };
  const ada = await join_('ada', gateway(0));
  const bob = await join_('bob', gateway(2));

  for (const [name, page] of [['ada', ada], ['bob', bob]] as const) {
    const s = await waitMedia(page, 1, 30000);
    t.ok(s.videos.some((v) => v.framesDecoded > 0), `${name} decodes the other's video (${s.videos.map((v) => v.framesDecoded)} frames)`);
    t.ok(s.audios.some((a) => a.totalAudioEnergy > 0), `${name} hears the other`);
    t.ok(s.pairs.length > 0 && s.pairs.every((p) => p.startsWith('relay/')), `${name}: selected pairs ${s.pairs} are relayed`);
  }
  await sendChat(ada, 'hello over the data channel');
  await waitChat(bob, 'hello over the data channel');
  t.pass('a data-channel message crossed the SFU');

  // Stop the room's SFU: its clients are told server-draining and come back through another SFU.
  const rooms = await (await fetch(`${gateway(1)}/v1/webrtc/rooms`, { headers: { authorization: `Bearer ${token}` } })).json();
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
  const moved = await (await fetch(`${gateway(1)}/v1/webrtc/rooms`, { headers: { authorization: `Bearer ${token}` } })).json();
  const second = moved.rooms.find((r: any) => r.room_id === ROOM).sfu_node;
  t.not(second, first, `the room moved from ${first} to ${second}`);
  await sshExec(first, `systemctl start orama-namespace-sfu@${NS}.service`);
});
