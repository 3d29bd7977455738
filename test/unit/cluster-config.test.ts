// The test cluster's pure parts: names, addresses, rules and argv built from a cluster name.
import t from 'tap';
import { clusterConfig, nodeConfig, nodeConfigs } from '../../src/cluster/config.ts';
import { firewallRules } from '../../src/cluster/firewall.ts';
import { inventoryDocument } from '../../src/cluster/inventory.ts';
import { nspawnArgv } from '../../src/cluster/node.ts';
import { sshArgv } from '../../src/cluster/ssh.ts';

t.test('the default cluster has the documented names and addresses', async (t) => {
  const c = clusterConfig({ name: 'default' });
  t.match(c, { pubBridge: 'pub', intBridge: 'int', pubNet: '10.77.0', intNet: '10.78.0', nodes: 3, tag: 'orama-test-cluster:default' });
  t.same(nodeConfigs(c).map((n) => [n.name, n.publicIp, n.internalIp, n.wgIp]), [
    ['node1', '10.77.0.11', '10.78.0.11', '10.0.0.1'],
    ['node2', '10.77.0.12', '10.78.0.12', '10.0.0.2'],
    ['node3', '10.77.0.13', '10.78.0.13', '10.0.0.3'],
  ]);
  t.throws(() => nodeConfig(c, 4), /no node 4 in cluster "default"/);
});

t.test('a second cluster shares no host-side name or range with the default one', async (t) => {
  const a = clusterConfig({ name: 'default' });
  const b = clusterConfig({ name: 'smoke' });
  for (const k of ['pubBridge', 'intBridge', 'pubNet', 'intNet', 'ifPrefix', 'netnsPrefix', 'tag', 'stateDir'] as const) {
    t.not(b[k], a[k], k);
  }
  for (const n of nodeConfigs(b)) t.ok(n.vethPub.length <= 15 && n.vethInt.length <= 15, `${n.vethPub} fits IFNAMSIZ`);
  t.throws(() => clusterConfig({ name: 'Bad-Name' }), /cluster name/);
});

t.test('firewall: intra-bridge traffic passes before the drops; every rule is tagged', async (t) => {
  const rules = firewallRules(clusterConfig({ name: 'default' }));
  const fwd = rules.filter((r) => r[0] === 'FORWARD').map((r) => r.join(' '));
  const pass = fwd.findIndex((r) => r.includes('-i pub -o pub'));
  const drop = fwd.findIndex((r) => r.includes('-i pub -m'));
  t.ok(pass >= 0, 'the intra-bridge accept rule exists');
  t.ok(drop >= 0, 'the bridge drop rule exists');
  t.ok(pass < drop, 'intra-bridge traffic is accepted before the drops');
  for (const r of rules) t.ok(r.includes('orama-test-cluster:default'), r.join(' '));
  t.ok(rules.some((r) => r[0] === 'INPUT' && r.includes('NEW') && r.at(-1) === 'REJECT'));
});

t.test('nspawn gets the flags the facts file says are not optional', async (t) => {
  const argv = nspawnArgv(nodeConfig(clusterConfig({ name: 'default' }), 1));
  for (const f of ['--register=no', '--keep-unit', '--capability=CAP_NET_ADMIN', '--bind=/dev/net/tun',
    '--network-namespace-path=/run/netns/otc-default-node1', '--boot']) t.ok(argv.includes(f), f);
});

t.test('ssh is strict about host keys and uses only the harness key', async (t) => {
  const c = clusterConfig({ name: 'default' });
  const argv = sshArgv(c, nodeConfig(c, 2), 'vagrant', ['id']).join(' ');
  t.match(argv, /StrictHostKeyChecking=yes/);
  t.match(argv, /IdentitiesOnly=yes/);
  t.match(argv, /vagrant@10\.77\.0\.12 id$/);
});

t.test('inventory has the shape the engine reads', async (t) => {
  const c = clusterConfig({ name: 'default' });
  const doc = inventoryDocument(c, nodeConfigs(c));
  t.match(doc.all.hosts.node1, { address: '10.77.0.11', port: 22, user: 'root', internal_ip: '10.78.0.11', wg_ip: '10.0.0.1' });
  t.same(Object.keys(doc.all.children.cluster.hosts), ['node1', 'node2', 'node3']);
});
