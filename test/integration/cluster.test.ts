// Smoke suite of the nspawn test cluster: real systemd, sshd, sudo, ufw, coturn on three nodes,
// node reboot / stop / start, host isolation, and a `down` that leaves nothing behind.
// Missing prerequisites (not root, no debootstrap …) fail here; nothing skips.
import t from 'tap';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { checkPrerequisites, clusterDown, clusterLeftovers, clusterUp, ensureClusterUp, rebootClusterNode, startClusterNode, stopClusterNode, type ClusterInfo } from '../../src/cluster/cluster.ts';
import { imagePath } from '../../src/cluster/image.ts';
import { clusterConfig, nodeConfig } from '../../src/cluster/config.ts';
import { nspawnPid } from '../../src/cluster/node.ts';
import { eventually, exitCode, onNode } from '../helpers/cluster-shell.ts';
import { hostTraces } from '../helpers/host-traces.ts';

// The smoke suite takes nodes down and wipes them: it runs on a cluster of its own ("smoke", own
// bridges and address ranges), so the default cluster that the demo and the other suites use
// survives it.
process.env.ORAMA_CLUSTER_NAME ??= 'smoke';

const NODES = ['node1', 'node2', 'node3'];
const seconds = (t0: number) => ((Date.now() - t0) / 1000).toFixed(1);

t.test('test cluster', async (t) => {
  await checkPrerequisites();
  let t0 = Date.now();
  let cluster: ClusterInfo = await ensureClusterUp();
  t.comment(`cluster "${cluster.name}" up in ${seconds(t0)}s`);
  const c = cluster.config;
  const [pub1, pub2, pub3] = cluster.hosts.map((h) => h.publicIp);
  const int3 = cluster.hosts[2].internalIp;

  // Leaves the nodes as a fresh `up` would, whatever a failed run left behind.
  const reset = 'ufw --force reset >/dev/null 2>&1; ufw disable >/dev/null 2>&1; rm -f /etc/ufw/*.rules.*; '
    + 'systemctl stop stun-smoke listen-smoke 2>/dev/null; systemctl reset-failed 2>/dev/null; '
    + 'systemctl disable --now orama-smoke@ns.service 2>/dev/null; rm -f /etc/systemd/system/orama-smoke@.service; systemctl daemon-reload; true';
  await Promise.all(NODES.map((n) => onNode(n, reset)));

  await t.test('three nodes, each with its own identity, reachable as root', async (t) => {
    t.same(cluster.hosts.map((h) => h.name), NODES);
    const ids = await Promise.all(NODES.map((n) => onNode(n, 'echo $(hostname) $(cat /etc/machine-id) $(id -un)')));
    ids.forEach((line, i) => t.match(line, new RegExp(`^node${i + 1} [0-9a-f]{32} root$`)));
    t.equal(new Set(ids.map((l) => l.split(' ')[1])).size, 3, 'distinct machine-ids');
    const hostKeys = readFileSync(cluster.knownHosts, 'utf8').trim().split('\n');
    t.equal(new Set(hostKeys.map((l) => l.split(' ')[2])).size, 3, 'distinct ssh host keys in known_hosts');
    t.ok(existsSync(cluster.inventory), `inventory written at ${cluster.inventory}`);
  });

  await t.test('vagrant user with passwordless sudo', async (t) => {
    for (const n of NODES) t.equal(await onNode(n, 'whoami && sudo -n id -u', 'vagrant'), 'vagrant\n0', n);
  });

  await t.test('systemd is fully up: running, no failed unit', async (t) => {
    for (const n of NODES) {
      const state = await onNode(n, 'systemctl is-system-running --wait || true');
      const failed = await onNode(n, 'systemctl --failed --no-legend --plain');
      t.equal(state, 'running', n);
      t.equal(failed, '', `${n}: failed units`);
    }
  });

  await t.test('up again is idempotent and leaves running nodes alone', async (t) => {
    const before = NODES.map((_, i) => nspawnPid(nodeConfig(clusterConfig(), i + 1)));
    const t1 = Date.now();
    cluster = await clusterUp();
    t.comment(`second up in ${seconds(t1)}s`);
    t.same(NODES.map((_, i) => nspawnPid(nodeConfig(clusterConfig(), i + 1))), before, 'same nspawn PIDs');
  });

  await t.test('nodes cannot open connections to the host', async (t) => {
    const server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    t.teardown(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const hostIps = Object.entries(networkInterfaces())
      .filter(([dev]) => !['lo', c.pubBridge, c.intBridge].includes(dev))
      .flatMap(([, a]) => (a ?? []).filter((x) => x.family === 'IPv4').map((x) => x.address));
    for (const ip of [`${c.pubNet}.1`, `${c.intNet}.1`, ...hostIps]) {
      t.not(await exitCode('node1', `nc -z -w2 ${ip} ${port}`), 0, `node1 -> host ${ip}:${port} refused`);
    }
    t.not(await exitCode('node1', `nc -z -w2 ${c.pubNet}.1 22`), 0, 'node1 -> host sshd refused');
    t.equal(await exitCode('node1', `nc -z -w2 ${pub2} 22`), 0, 'node1 -> node2 works');
    t.equal(await exitCode('node1', `ping -c1 -W2 ${int3}`), 0, 'node1 -> node3 on the underlay works');
  });

  await t.test('wireguard-go can create its tun device (underlay prerequisites)', async (t) => {
    const out = await onNode('node1', 'wireguard-go wgsmoke && ip -o link show wgsmoke; ip link del wgsmoke');
    t.match(out, /wgsmoke/);
    t.match(await onNode('node1', 'wg --version'), /wireguard-tools/);
  });

  await t.test('a ufw rule on node1 is enforced as seen from node2', async (t) => {
    await onNode('node1', reset);
    await onNode('node1', `systemd-run --unit=listen-smoke nc -lk ${pub1} 8080`);
    await eventually('node1 listening on 8080', async () => (await exitCode('node2', `nc -z -w2 ${pub1} 8080`)) === 0);
    await onNode('node1', 'ufw allow 22/tcp && ufw --force enable');
    t.not(await exitCode('node2', `nc -z -w2 ${pub1} 8080`), 0, 'blocked by ufw default deny');
    await onNode('node1', 'ufw allow 8080/tcp');
    t.equal(await exitCode('node2', `nc -z -w2 ${pub1} 8080`), 0, 'open after `ufw allow 8080/tcp`');
    await onNode('node1', reset);
  });

  await t.test('coturn answers STUN from another node', async (t) => {
    await onNode('node1', reset);
    t.equal(await onNode('node1', 'systemctl is-enabled coturn.service || true'), 'masked', "Debian's coturn.service is masked in the image");
    await onNode('node1', `systemd-run --unit=stun-smoke turnserver -n --listening-ip=${pub1} --listening-port=3478 --no-cli --no-tls --no-dtls --log-file=stdout --simple-log`);
    await eventually(`turnserver on ${pub1}:3478`, async () => (await onNode('node1', `ss -Hlun src ${pub1}:3478`)).length > 0);
    t.match(await onNode('node2', `timeout 10 turnutils_stunclient -p 3478 ${pub1}`), new RegExp(`UDP reflexive addr: ${pub2.replace(/\./g, '\\.')}:\\d+`));
    await onNode('node1', 'systemctl stop stun-smoke');
    t.not(await exitCode('node2', `timeout 5 turnutils_stunclient -p 3478 ${pub1}`), 0, 'no answer once turnserver is stopped');
  });

  await t.test('a templated, hardened unit is enabled and survives a node reboot', async (t) => {
    const unit = [
      '[Unit]', 'Description=orama smoke %i', '[Service]', 'DynamicUser=yes', 'ProtectSystem=strict',
      'RuntimeDirectory=orama-smoke-%i', "ExecStart=/bin/sh -c 'echo %i > $RUNTIME_DIRECTORY/instance; exec sleep infinity'",
      '[Install]', 'WantedBy=multi-user.target',
    ].join('\n');
    const b64 = Buffer.from(`${unit}\n`).toString('base64');
    await onNode('node2', `echo ${b64} | base64 -d > /etc/systemd/system/orama-smoke@.service && systemctl daemon-reload && systemctl enable --now orama-smoke@ns.service`);
    t.equal(await onNode('node2', 'systemctl is-active orama-smoke@ns.service'), 'active');
    const bootBefore = await onNode('node2', 'cat /proc/sys/kernel/random/boot_id; journalctl --list-boots --no-pager | wc -l');
    const t1 = Date.now();
    await rebootClusterNode(2);
    t.comment(`node2 rebooted in ${seconds(t1)}s`);
    t.equal(await onNode('node2', 'systemctl is-system-running --wait || true'), 'running');
    t.equal(await onNode('node2', 'systemctl is-active orama-smoke@ns.service'), 'active', 'active after reboot');
    t.equal(await onNode('node2', 'cat /run/orama-smoke-ns/instance'), 'ns');
    t.not(await onNode('node2', 'cat /proc/sys/kernel/random/boot_id; journalctl --list-boots --no-pager | wc -l'), bootBefore, 'a new boot in the journal');
    await onNode('node2', reset);
  });

  await t.test('stop and start a node from the host', async (t) => {
    const id = await onNode('node3', 'cat /etc/machine-id');
    await stopClusterNode(3);
    t.not(await exitCode('node1', `nc -z -w2 ${pub3} 22`), 0, 'node3 down as seen from node1');
    await startClusterNode(3);
    t.equal(await onNode('node3', 'cat /etc/machine-id'), id, 'same node after start');
    t.equal(await onNode('node3', 'systemctl is-system-running --wait || true'), 'running');
  });

  await t.test('down leaves nothing behind; up brings the same nodes back', async (t) => {
    const id = await onNode('node1', 'cat /etc/machine-id');
    let t1 = Date.now();
    await clusterDown();
    t.comment(`down in ${seconds(t1)}s`);
    const left = await clusterLeftovers();
    t.same(left, { processes: [], mounts: [], netns: [], links: [], cgroups: [], firewall: [] }, 'no process, mount, netns, link, cgroup or rule left');
    t.same(await hostTraces(c), [], 'nothing of the cluster in ip link/netns, /proc/mounts, iptables-save, cgroupfs, ps');
    t1 = Date.now();
    cluster = await clusterUp();
    t.comment(`up (cached image, existing overlays) in ${seconds(t1)}s`);
    t.equal(await onNode('node1', 'cat /etc/machine-id'), id, 'node state kept across down/up');
  });

  await t.test('down --wipe forgets node state, keeps the image; up gives new identities', async (t) => {
    const id = await onNode('node1', 'cat /etc/machine-id');
    await clusterDown({ wipe: true });
    t.notOk(existsSync(clusterConfig().stateDir), 'state dir removed');
    t.ok(existsSync(imagePath(clusterConfig())), 'image cache kept');
    t.same(await clusterLeftovers(), { processes: [], mounts: [], netns: [], links: [], cgroups: [], firewall: [] });
    t.same(await hostTraces(c), [], 'nothing of the cluster left on the host');
    const t1 = Date.now();
    cluster = await clusterUp();
    t.comment(`up from a wiped state (cached image) in ${seconds(t1)}s`);
    t.not(await onNode('node1', 'cat /etc/machine-id'), id, 'a new node');
    t.ok(readFileSync(join(clusterConfig().stateDir, 'known_hosts'), 'utf8').includes(`node1,${pub1}`), 'known_hosts regenerated');
    for (const n of NODES) t.equal(await onNode(n, 'systemctl is-system-running --wait || true'), 'running', n);
  });

  await clusterDown({ wipe: true });
});
