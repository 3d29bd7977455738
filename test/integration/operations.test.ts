// Operating a namespace on the real test cluster: `orama monitor report` from real probes run on
// the nodes (SFU /health over WireGuard, a TURN binding and allocation with a credential from the
// namespace's secret, the gateway's /health, rooms from the cluster database), and what it says
// when a part is broken on purpose: a stopped SFU, a stopped coturn, a node that cannot be reached.
// One namespace is enabled for the whole suite.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { sshExec } from '../../src/cluster/cluster.ts';
import { unitName } from '../../src/webrtc/names.ts';
import { clientNetns, clusterSuite } from '../helpers/cluster-suite.ts';
import { tempDir } from '../helpers/tmp.ts';
import { eventually } from '../helpers/cluster-shell.ts';
import { frontCa, frontFetch } from '../helpers/front.ts';
import Database from 'better-sqlite3';
import type { MonitorReport } from '../../src/namespace/monitor.ts';
import type { InspectorReport } from '../../src/namespace/inspector.ts';

const NS = 'ops';

t.test('operating a namespace', async (t) => {
  const { cluster, orama, base, state: state_ } = await clusterSuite();
  t.equal(base.code, 0, 'node-base applied: ' + base.out.slice(-1500));
  await orama('namespace', 'disable', 'webrtc', '--namespace', NS); // leftovers of an interrupted run
  t.teardown(() => orama('namespace', 'disable', 'webrtc', '--namespace', NS));
  const e = await orama('namespace', 'enable', 'webrtc', '--namespace', NS);
  t.equal(e.code, 0, e.out.slice(-3000));

  const report = async (...extra: string[]) => {
    const r = await orama('monitor', 'report', '--namespace', NS, '--json', ...extra);
    let j: MonitorReport | undefined;
    try {
      j = JSON.parse(r.stdout);
    } catch {}
    return { code: r.code, out: r.out, j: j! };
  };
  const row = (j: MonitorReport, node: string) => j.namespaces[0].nodes.find((n) => n.node === node)!;

  await t.test('monitor report: every part up, from real probes', async (t) => {
    const r = await report();
    t.equal(r.code, 0, r.out.slice(-3000));
    t.equal(r.j.format_version, '1.0');
    t.ok(r.j.healthy, 'healthy');
    t.same(r.j.nodes.map((n) => [n.node, n.reachable, n.db_up]), cluster.hosts.map((h) => [h.name, true, true]), 'every node reachable, its database answers');
    const ns = r.j.namespaces[0];
    t.equal(ns.namespace, NS);
    t.equal(ns.turn_nodes.length, 2, 'two TURN nodes');
    for (const n of ns.nodes) {
      t.ok(n.sfu_up && n.gateway_up, `${n.node}: SFU and gateway answer /health`);
      t.equal(n.turn_up, ns.turn_nodes.includes(n.node) ? true : null, `${n.node}: TURN allocated where it runs, "-" elsewhere`);
      t.equal(n.peers, 0, `${n.node}: no peers yet`);
      t.equal(n.rooms, 0, `${n.node}: no rooms (cluster database)`);
      t.match(n.ports, { sfu_signal: /^\d+$/, sfu_media: /^\d+-\d+$/ }, `${n.node}: port blocks (operator store)`);
      if (n.turn_up) t.ok(typeof n.relay_allocations === 'number', `${n.node}: relay allocations counted`);
    }
    const text = await orama('monitor', 'report', '--namespace', NS);
    t.match(text.out, /operator store:\s+\/var\/lib\/orama\/state\.db\s+\(namespaces, secrets, port blocks\)\n\s+cluster database:\s+rqlite .*\(rooms\)/, 'the text names which store each column comes from');
    t.match(text.out, /^environment local\n/, 'and which environment (the suite\'s ORAMA_* say what local says)');
    t.match(text.out, /namespace ops: enabled .*; healthy/);
    t.notMatch(text.out + JSON.stringify(r.j), /credential|password/i, 'no TURN credential or database password in the report');
  });

  await t.test('a stopped SFU is a finding on that node only', async (t) => {
    const unit = unitName('sfu', NS);
    await sshExec('node2', `systemctl stop ${unit}`);
    t.teardown(() => sshExec('node2', `systemctl start ${unit}`).then(() => {}));
    const r = await report();
    t.equal(r.code, 1, 'exit 1: not healthy');
    t.equal(row(r.j, 'node2').sfu_up, false);
    t.match(row(r.j, 'node2').problems.join('\n'), /sfu \/health/, 'the problem names the SFU');
    t.ok(row(r.j, 'node1').sfu_up && row(r.j, 'node3').sfu_up, 'the other nodes are still up');
    await sshExec('node2', `systemctl start ${unit}`);
  });

  await t.test('a stopped coturn: turn_up false there, the TURN probe says what failed', async (t) => {
    const first = (await report()).j.namespaces[0].turn_nodes[0];
    const unit = unitName('turn', NS);
    await sshExec(first, `systemctl stop ${unit}`);
    t.teardown(() => sshExec(first, `systemctl start ${unit}`).then(() => {}));
    const r = await report();
    t.equal(r.code, 1);
    t.equal(row(r.j, first).turn_up, false);
    t.match(row(r.j, first).problems.join('\n'), /TURN: binding 0 timeout/, 'no answer to the binding');
    const other = r.j.namespaces[0].turn_nodes[1];
    t.equal(row(r.j, other).turn_up, true, 'the other TURN node still allocates');
    await sshExec(first, `systemctl start ${unit}`);
  });

  await t.test('a stopped gateway: both down there, and its front says why', async (t) => {
    const unit = unitName('gateway', NS);
    await sshExec('node2', `systemctl stop ${unit}`);
    t.teardown(() => sshExec('node2', `systemctl start ${unit}`).then(() => {}));
    const r = await report();
    t.same([row(r.j, 'node2').gateway_up, row(r.j, 'node2').front_up], [false, false], 'node2: gateway and front both report it');
    t.match(row(r.j, 'node2').problems.join('\n'), /gateway \/health: .*ENOENT/, 'the socket is gone');
    t.match(row(r.j, 'node2').problems.join('\n'), /front \/health: HTTP 502/, 'the front answers 502');
    const res = await frontFetch(frontCa(cluster.inventory), r.j.nodes.find((n) => n.node === 'node2')!.public_ip, `https://ns-${NS}.orama.test/health`);
    t.equal(res.status, 502);
    t.match(res.text, /502: no gateway of this namespace answers on this node/, 'with a body that says so');
    await sshExec('node2', `systemctl start ${unit}`);
  });

  await t.test('a stopped front: front_up false there, the gateway behind it still up', async (t) => {
    await sshExec('node2', 'systemctl stop orama-front.service');
    t.teardown(() => sshExec('node2', 'systemctl start orama-front.service').then(() => {}));
    const r = await report();
    t.equal(r.code, 1, 'exit 1: not healthy');
    t.same([row(r.j, 'node2').front_up, row(r.j, 'node2').gateway_up], [false, true], 'node2: front down, gateway (on its socket) up');
    t.match(row(r.j, 'node2').problems.join('\n'), /front \/health: .*ECONNREFUSED/, 'the problem names the front and why');
    t.ok(row(r.j, 'node1').front_up && row(r.j, 'node3').front_up, 'the other fronts are up');
    await sshExec('node2', 'systemctl start orama-front.service');
    await eventually('node2\'s front is back', async () => row((await report()).j, 'node2').front_up, 30_000);
    t.pass('front_up again once it runs');
  });

  await t.test('disable of a namespace never enabled: "nothing to disable", no node touched', async (t) => {
    const fingerprint = () => Promise.all([1, 2, 3].map(async (n) => (await sshExec(`node${n}`, "ls -a /var/lib/orama/namespaces; systemctl list-units 'orama-*' --all --no-legend --plain | awk '{print $1, $3, $4}'; ufw status verbose | sha256sum; find /etc/orama -type f | sort | xargs sha256sum | sha256sum")).stdout));
    const before = await fingerprint();
    const r = await orama('namespace', 'disable', 'webrtc', '--namespace', 'nosuchns');
    t.equal(r.code, 0, 'exit 0: nothing to do is not an error');
    t.match(r.out, /nothing to disable: namespace "nosuchns" has no WebRTC in the operator store of environment "local"/, 'it says so');
    t.notMatch(r.out, /TASK|WebRTC disabled/, 'no playbook ran');
    t.same(await fingerprint(), before, 'every node as before (no nosuchns state directory, same units, firewall and /etc/orama)');
    const j = await orama('namespace', 'disable', 'webrtc', '--namespace', 'nosuchns', '--json');
    t.same(JSON.parse(j.stdout), { namespace: 'nosuchns', changed: false, reason: 'not enabled in the operator store' }, '--json says the same');
  });

  await t.test('an unreachable node is a finding, not a crash', async (t) => {
    const inv = YAML.parse(readFileSync(cluster.inventory, 'utf8'));
    inv.all.hosts.node3.address = '10.77.0.250'; // on the cluster's bridge, nobody there
    const file = join(tempDir(t, 'ops-inv-'), 'inventory.yml');
    writeFileSync(file, YAML.stringify(inv));
    const r = await report('-i', file);
    t.equal(r.code, 1);
    const n3 = r.j.nodes.find((n) => n.node === 'node3')!;
    t.equal(n3.reachable, false);
    t.match(n3.error, /10\.77\.0\.250/, 'the error names the address');
    t.ok(r.j.nodes.filter((n) => n.node !== 'node3').every((n) => n.reachable), 'the others were probed');
  });

  await t.test("every node's DNS server answers the namespace's names, to the browsers' network", async (t) => {
    const r = await report();
    const ip = (n: string) => r.j.nodes.find((x) => x.node === n)!.public_ip;
    const turnIps = r.j.namespaces[0].turn_nodes.map(ip).sort();
    const all = r.j.nodes.map((n) => n.public_ip).sort();
    const { netns, sh, remove } = clientNetns(cluster, 'odns', 62);
    t.teardown(remove);
    const dig = (server: string, name: string) => sh(`ip netns exec ${netns} kdig +short +time=2 +retry=1 @${server} ${name} A`).trim().split('\n').filter(Boolean).sort();
    for (const n of r.j.nodes) {
      t.same(dig(n.public_ip, `turn.ns-${NS}.orama.test`), turnIps, `${n.node}: turn.ns-${NS} → the TURN nodes`);
      t.same(dig(n.public_ip, `ns-${NS}.orama.test`), all, `${n.node}: ns-${NS} → every gateway`);
    }
    t.match(sh(`ip netns exec ${netns} kdig +time=2 +retry=1 @${all[0]} ns-nosuchns.orama.test A`), /status: REFUSED/, 'a zone it does not have: refused, not invented');
    // TURN URLs by name (turn_url_host: name) use each node's own name in the zone.
    for (const n of r.j.nodes) t.same(dig(all[0], `${n.node}.ns-${NS}.orama.test`), [n.public_ip], `${n.node}.ns-${NS} → ${n.node}'s address (what TURN URLs by name point at)`);
    const inv = YAML.parse(readFileSync(cluster.inventory, 'utf8'));
    inv.all.vars.turn_url_host = 'name';
    const named = join(tempDir(t, 'ops-names-'), 'inventory.yml');
    writeFileSync(named, YAML.stringify(inv));
    const p = await orama('namespace', 'enable', 'webrtc', '--namespace', NS, '--plan', '-i', named);
    t.equal(p.code, 2, 'with turn_url_host: name, the plan changes the gateways\' config');
    t.match(p.out, new RegExp(`\\+\\s+"turn:${r.j.namespaces[0].turn_nodes[0]}\\.ns-${NS}\\.orama\\.test:\\d+\\?transport=udp"`), 'to TURN URLs by name');
  });

  await t.test('the DNS server and the HTTPS front meet the sandbox bar of the TURN wall', async (t) => {
    // docs/security.md: each one capability is binding its port below 1024 (53, 443).
    for (const [unit, user] of [['orama-dns', 'knot'], ['orama-front', 'orama-front']]) {
      const show = (await sshExec('node1', `systemctl show -p User -p NoNewPrivileges -p ProtectSystem -p PrivateDevices -p CapabilityBoundingSet ${unit}.service`)).stdout;
      const p = Object.fromEntries(show.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
      t.same([p.User, p.NoNewPrivileges, p.ProtectSystem, p.PrivateDevices, p.CapabilityBoundingSet], [user, 'yes', 'strict', 'yes', 'cap_net_bind_service'], `${unit}: its own user, sandboxed, one capability`);
      const score = Number((await sshExec('node1', `systemd-analyze security ${unit}.service 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \\([0-9.]*\\).*/\\1/p'`)).stdout.trim());
      t.ok(score > 0 && score <= 2.5, `${unit}: systemd-analyze security ${score} (goal ≤ 2.5)`);
    }
    t.match((await sshExec('node1', 'ss -Hltn sport = :443')).stdout, /10\.77\.0\.11:443/, 'the front listens on the public address');
    t.equal((await sshExec('node1', "ss -Hltn '( sport = :80 or sport = :2019 )' | wc -l")).stdout.trim(), '0', 'no port 80 redirect listener, no admin API');
  });

  const inspector = async (...extra: string[]) => {
    const r = await orama('inspector', '--namespace', NS, '--json', ...extra);
    let j: InspectorReport | undefined;
    try {
      j = JSON.parse(r.stdout);
    } catch {}
    return { code: r.code, out: r.out, j: j! };
  };
  const only = (j: InspectorReport, check: string) => j.findings.filter((f) => f.check === check);

  await t.test('inspector: a converged cluster has no findings', async (t) => {
    const r = await inspector();
    t.equal(r.code, 0, r.out.slice(-3000));
    t.same(r.j.findings, [], 'no findings');
    t.same(r.j.checks, ['reachability', 'sfu-coverage', 'turn-redundancy', 'units', 'firewall', 'dns', 'cluster-state', 'turn-secret', 'gateway-credential']);
    const text = await orama('inspector', '--namespace', NS);
    t.match(text.out, /no findings\nOK/);
  });

  await t.test('inspector: each check, broken on purpose, finds exactly that', async (t) => {
    const turnNodes = (await report()).j.namespaces[0].turn_nodes;
    const conf = `/etc/orama/webrtc/${NS}/turnserver.conf`;
    const state = `/var/lib/orama/namespaces/${NS}/cluster_state.json`;

    await t.test('a stray open port', async (t) => {
      await sshExec('node1', 'ufw allow 4444/tcp >/dev/null');
      t.teardown(() => sshExec('node1', 'ufw delete allow 4444/tcp >/dev/null').then(() => {}));
      const r = await inspector();
      t.equal(r.code, 1);
      t.same(r.j.findings.map((f) => [f.check, f.node]), [['firewall', 'node1']], 'one finding: the firewall of node1');
      t.match(r.j.findings[0].message, /extra open port on node1: allow proto tcp from any to any port 4444 \(in no orama set\)/);
    });

    await t.test('an edited cluster_state.json', async (t) => {
      await sshExec('node2', `cp ${state} ${state}.bak && sed -i 's/"sfu_signal_port": [0-9]*/"sfu_signal_port": 1/' ${state}`);
      t.teardown(() => sshExec('node2', `mv ${state}.bak ${state}`).then(() => {}));
      const r = await inspector();
      t.equal(r.code, 1);
      t.same(r.j.findings.map((f) => [f.check, f.node]), [['cluster-state', 'node2']]);
      t.match(r.j.findings[0].message, /sfu_signal_port 1 \(store: \d+\)/);
    });

    await t.test('a changed TURN secret on one node (compared by hash, never shown)', async (t) => {
      const n = turnNodes[0];
      await sshExec(n, `cp ${conf} ${conf}.bak && sed -i 's/^static-auth-secret=.*/static-auth-secret=not-the-namespace-secret/' ${conf}`);
      t.teardown(() => sshExec(n, `mv ${conf}.bak ${conf}`).then(() => {}));
      const r = await inspector();
      t.equal(r.code, 1);
      t.same(only(r.j, 'turn-secret').map((f) => f.node), [n], 'the node whose config differs');
      t.same(r.j.findings.filter((f) => f.check !== 'turn-secret'), [], 'and nothing else (coturn still runs with the secret it loaded)');
      t.notMatch(r.out, /not-the-namespace-secret/, 'no secret in the report');
    });

    await t.test('a deleted DNS record', async (t) => {
      const db = new Database(state_, {});
      db.prepare("DELETE FROM webrtc_dns_records WHERE namespace = ? AND rowid = (SELECT MIN(rowid) FROM webrtc_dns_records WHERE namespace = ?)").run(NS, NS);
      db.close();
      const r = await inspector();
      t.equal(r.code, 1);
      t.same([...new Set(r.j.findings.map((f) => f.check))], ['dns'], 'only dns findings');
      t.match(r.j.findings[0].message, /turn\.ns-ops A records \[[^\]]*\] ≠ the TURN nodes' addresses/, 'the store lost a TURN record');
      t.equal(r.j.findings.filter((f) => /the DNS server on node\d answers turn\.ns-ops\.orama\.test with/.test(f.message)).length, 3, "and every node's server still answers what the store no longer says");
    });

    await t.test('a stopped gateway', async (t) => {
      const unit = unitName('gateway', NS);
      await sshExec('node3', `systemctl stop ${unit}`);
      t.teardown(() => sshExec('node3', `systemctl start ${unit}`).then(() => {}));
      const r = await inspector();
      t.equal(r.code, 1);
      t.ok(only(r.j, 'units').some((f) => f.node === 'node3' && f.message.includes(unit)), 'the unit is not active');
      t.ok(only(r.j, 'gateway-credential').some((f) => f.node === 'node3'), 'and that gateway issues no credentials');
      t.same([...new Set(r.j.findings.map((f) => f.check))].sort(), ['dns', 'gateway-credential', 'units'], 'nothing else (the DNS record is still gone)');
    });

    await t.test('enable converges everything again', async (t) => {
      const e = await orama('namespace', 'enable', 'webrtc', '--namespace', NS);
      t.equal(e.code, 0, e.out.slice(-2000));
      const r = await inspector();
      t.equal(r.code, 0, r.out.slice(-2000));
    });
  });

  await t.test('bad input: an unknown namespace', async (t) => {
    const r = await orama('monitor', 'report', '--namespace', 'nosuchns');
    t.equal(r.code, 1);
    t.match(r.out, /--namespace "nosuchns": no WebRTC for it in the operator store of environment "\S+" \(known: .*ops/);
  });
  await t.test('disable removes the zone from every node', async (t) => {
    const ips = (await report()).j.nodes.map((n) => n.public_ip);
    const d = await orama('namespace', 'disable', 'webrtc', '--namespace', NS);
    t.equal(d.code, 0, d.out.slice(-2000));
    const { netns, sh, remove } = clientNetns(cluster, 'odns', 63);
    t.teardown(remove);
    for (const ip of ips) t.match(sh(`ip netns exec ${netns} kdig +time=2 +retry=1 @${ip} turn.ns-${NS}.orama.test A`), /status: REFUSED/, `${ip}: no zone any more`);
  });
});
