// playbooks/node-base.yml on the real test cluster: our tool (not the harness) builds the
// WireGuard mesh, the base firewall and the Node runtime; a second apply changes nothing.
import t from 'tap';
import { join } from 'node:path';
import { ensureClusterUp, sshExec } from '../../src/cluster/cluster.ts';
import { provision as cli, recapChanged, root } from '../helpers/cli.ts';


const sh = async (node: string, cmd: string) => (await sshExec(node, cmd)).stdout.trim();

t.test('node-base playbook on the test cluster', async (t) => {
  const cluster = await ensureClusterUp();
  const pb = join(root, 'playbooks', 'node-base.yml');
  const first = await cli(['apply', pb, '-i', cluster.inventory]);
  t.equal(first.code, 0, first.out.slice(-3000));
  const second = await cli(['apply', pb, '-i', cluster.inventory]);
  t.equal(second.code, 0);
  t.equal(recapChanged(second.out), 0, 'second apply changes nothing');
  const plan = await cli(['plan', pb, '-i', cluster.inventory]);
  t.equal(plan.code, 0, 'plan after apply: no changes');

  await t.test('WireGuard tunnel is up between every pair of nodes', async (t) => {
    for (const h of cluster.hosts) {
      t.equal(await sh(h.name, 'systemctl is-active wg-quick@wg0.service'), 'active', `${h.name} wg-quick active`);
      t.equal(await sh(h.name, "wg show wg0 peers | wc -l"), String(cluster.hosts.length - 1), `${h.name} has every other node as peer`);
    }
    // Traffic over the tunnel: node1 → node3's WireGuard address, then a handshake is recorded.
    t.match(await sh('node1', `ping -c 2 -W 2 ${cluster.hosts[2].wgIp} >/dev/null && echo reachable`), 'reachable');
    t.match(await sh('node1', 'wg show wg0 latest-handshakes'), /\s[1-9][0-9]+$/m, 'a real handshake happened');
    t.notMatch(await sh('node1', 'cat /etc/wireguard/wg0.conf'), /PrivateKey/, 'the private key is not in the rendered config');
  });

  await t.test('the base firewall is enforced: ssh in, the mesh closed but for the database between nodes', async (t) => {
    await sshExec('node3', 'systemd-run --unit=orama-nb-probe -p RuntimeMaxSec=30 nc -lk -p 4555 >/dev/null');
    t.teardown(() => sshExec('node3', 'systemctl stop orama-nb-probe 2>/dev/null; true'));
    const probe = async (ip: string) => (await sshExec('node1', `nc -z -w 2 ${ip} 4555 && echo open || echo closed`)).stdout.trim();
    t.equal(await probe(cluster.hosts[2].publicIp), 'closed', 'closed on the public address');
    t.equal(await probe(cluster.hosts[2].wgIp), 'closed', 'closed inside the WireGuard mesh too (namespace sets open only their own ports)');
    const db = async (ip: string) => (await sshExec('node1', `nc -z -w 2 ${ip} 4001 && echo open || echo closed`)).stdout.trim();
    t.equal(await db(cluster.hosts[2].wgIp), 'open', 'the database port is open from another node over the mesh');
    t.equal(await db(cluster.hosts[2].publicIp), 'closed', 'and closed on the public address');
    t.equal(await sh('node1', 'ufw status | head -1'), 'Status: active');
  });

  await t.test('Node >= 20 runtime is on every node; Debian coturn.service is masked', async (t) => {
    for (const h of cluster.hosts) {
      t.match(await sh(h.name, '/opt/orama/runtime/node --version'), /^v2\d\./, `${h.name} node runtime`);
      t.equal(await sh(h.name, 'systemctl is-enabled coturn.service 2>&1 || true'), 'masked');
    }
  });
});
