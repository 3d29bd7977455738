// Cold boot, with no controller involved: every node of an enabled namespace is stopped. One node
// boots alone — its database has no quorum — and its media plane (coturn, SFU) still comes up,
// while its gateway answers 503 and says so in its log, retrying. The other nodes boot, the
// database is back, the gateway says so, and two browsers call each other through the cluster as
// it came back. What the nodes bring back is theirs: the units are enabled, they read their local
// files, the gateway starts After= the database (docs/operations.md, "Cold boot").
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { sshExec, startClusterNode, stopClusterNode } from '../../src/cluster/cluster.ts';
import { unitName } from '../../src/webrtc/names.ts';
import { frontCa } from '../helpers/front.ts';
import { clientNetns, clusterSuite } from '../helpers/cluster-suite.ts';
import { eventually } from '../helpers/cluster-shell.ts';
import { launchInNetns, waitEvent, waitMedia } from '../helpers/browser.ts';
import type { MonitorReport } from '../../src/namespace/monitor.ts';

const NS = 'boot';
const sh = async (node: string, cmd: string) => (await sshExec(node, cmd)).stdout.trim();

t.test('a cold-booted cluster serves calls again by itself', async (t) => {
  const { cluster, orama, base } = await clusterSuite();
  t.equal(base.code, 0, 'node-base');
  const enable = await orama('namespace', 'enable', 'webrtc', '--namespace', NS);
  t.equal(enable.code, 0, enable.out.slice(-2000));
  t.teardown(() => orama('namespace', 'disable', 'webrtc', '--namespace', NS));
  const monitor = async (): Promise<MonitorReport> => JSON.parse((await orama('monitor', 'report', '--namespace', NS, '--json')).stdout);
  const token = (await orama('token', 'mint', '--namespace', NS, '--subject', 'host', '--owner')).stdout.trim();
  const before = await monitor();
  t.ok(before.healthy, 'healthy before');
  const row = (r: MonitorReport, n: string) => r.namespaces[0].nodes.find((x) => x.node === n)!;

  // Power all three off (a clean shutdown each), then only node1 on.
  for (const i of [1, 2, 3]) await stopClusterNode(i);
  t.teardown(async () => {
    for (const i of [1, 2, 3]) await startClusterNode(i).catch(() => undefined);
  });
  await startClusterNode(1);

  await t.test('one node alone: no database quorum, the media plane is up, the gateway waits', async (t) => {
    await eventually('node1 answers ssh', async () => (await sshExec('node1', 'true').then(() => true, () => false)), 60_000);
    await eventually("node1's SFU serves", async () => {
      const r = await monitor().catch(() => undefined);
      return Boolean(r && row(r, 'node1').sfu_up);
    }, 90_000);
    const r = await monitor();
    t.equal(r.nodes.find((n) => n.node === 'node1')!.db_up, false, 'the database on node1 has no quorum');
    t.equal(row(r, 'node1').sfu_up, true, 'the SFU answers /health without the database');
    if (r.namespaces[0].turn_nodes.includes('node1')) t.equal(row(r, 'node1').turn_up, true, 'coturn allocates without the database');
    t.equal(await sh('node1', `systemctl is-active ${unitName('gateway', NS)}`), 'active', 'the gateway runs');
    t.equal(row(r, 'node1').gateway_up, false, 'and answers /health with 503 while the database is away');
    await eventually('the gateway logged the warning', async () => (await sh('node1', `journalctl -u ${unitName('gateway', NS)} -b --no-pager -o cat`)).includes('WARNING: cluster database unreachable'), 60_000);
    t.pass('the gateway logged "WARNING: cluster database unreachable" and retries');
  });

  await startClusterNode(2);
  await startClusterNode(3);

  await t.test('the others boot: the database is back, everything healthy, the gateway says so', async (t) => {
    await eventually('the namespace is healthy again', async () => Boolean((await monitor().catch(() => undefined))?.healthy), 180_000);
    t.pass('monitor report: healthy');
    await eventually('the gateway logged the recovery', async () => (await sh('node1', `journalctl -u ${unitName('gateway', NS)} -b --no-pager -o cat`)).includes('cluster database reachable again'), 60_000);
    t.pass('"cluster database reachable again"');
  });

  await t.test('two browsers call through the cold-booted cluster', async (t) => {
    const r = await monitor();
    const ip = (n: string) => r.nodes.find((x) => x.node === n)!.public_ip;
    const { netns, remove } = clientNetns(cluster, 'oboot', 61);
    t.teardown(remove);
    const profile = mkdtempSync(join(tmpdir(), 'oboot-'));
    t.teardown(() => rmSync(profile, { recursive: true, force: true }));
    // Each browser pinned to one node's front (as a hosts-file line would): two gateways.
    const host = `ns-${NS}.orama.test`;
    const ca = frontCa(cluster.inventory);
    const browsers = [await launchInNetns(join(profile, 'a'), netns, { ca, resolve: { [host]: ip('node1') } }), await launchInNetns(join(profile, 'b'), netns, { ca, resolve: { [host]: ip('node3') } })];
    t.teardown(async () => { for (const b of browsers) await b.close(); });
    const join_ = async (name: string, browser: (typeof browsers)[number]): Promise<Page> => {
      const page = await (await browser.newContext()).newPage();
      page.on('pageerror', (e) => t.comment(`${name} page error: ${e.message}`));
      await page.goto(`https://${host}/v1/webrtc/client/demo.html#${new URLSearchParams({ room: 'after-boot', token, name, autojoin: '1' })}`);
      await waitEvent(page, 'joined', 0, 30000);
      return page;
    };
    const ada = await join_('ada', browsers[0]);
    const bob = await join_('bob', browsers[1]);
    for (const [name, page] of [['ada', ada], ['bob', bob]] as const) {
      const s = await waitMedia(page, 1, 30000);
      t.ok(s.videos.some((v) => v.framesDecoded > 0), `${name} decodes the other's video`);
      t.ok(s.pairs.length > 0 && s.pairs.every((p) => p.startsWith('relay/')), `${name}: relayed`);
    }
  });
});
