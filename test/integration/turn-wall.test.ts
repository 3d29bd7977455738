// The TURN wall, attacked on the real test cluster with real coturn and credentials from real
// gateways: a member of namespace A (not an owner) gets TURN credentials from A's gateway and
// tries everything a tenant could try with them. Each attack is one named assertion, so a
// regression says which wall fell (docs/security.md maps attacker × asset → wall → test):
//   1. coturn: no TCP relays, no peer but the SFUs' WireGuard addresses (public, loopback,
//      link-local, other private, IPv4-mapped and IPv6 peers refused), per-user quotas,
//      credentials of another namespace / expired / signed with another secret refused;
//   2. the mesh firewall and the owner-match table: relayed UDP to any WireGuard port outside A's
//      own SFU media range — DNS, B's SFU media, a spare port — on other nodes AND on the TURN
//      node's own address is dropped (a listener never receives it); A's own SFU media works;
//   3. the cluster database refuses unauthenticated requests, from a node too;
//   4. every unit runs sandboxed as its own namespace user; A cannot read B's credentials;
//   5. the browsers' network reaches no WireGuard address.
// No data is ever sent to a public or TEST-NET address: CreatePermission only, never Send.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import YAML from 'yaml';
import { root } from '../helpers/cli.ts';
import { clientNetns, clusterSuite } from '../helpers/cluster-suite.ts';
import { frontCa, frontOf } from '../helpers/front.ts';
import { dbCredentialsDir } from '../../src/cluster/inventory.ts';
import { onNode, exitCode, eventually, udpListener } from '../helpers/cluster-shell.ts';
import { TurnClient } from '../../src/webrtc/turn-client.ts';
import { turnCredential } from '../../src/webrtc/credentials.ts';

const A = 'wall-a';
const B = 'wall-b';
const GAP = 'wall-gap';

interface NodeStatus { node: string; public_ip: string; wg_ip: string; turn_up: boolean; ports: Record<string, number | string> }

t.test('the TURN wall', async (t) => {
  const { cluster, state, orama, base } = await clusterSuite();
  t.equal(base.code, 0, 'node-base applied: ' + base.out.slice(-1500));
  t.teardown(async () => {
    for (const ns of [A, B, GAP]) await orama('namespace', 'disable', 'webrtc', '--namespace', ns);
  });
  // A namespace enabled before A and disabled after leaves a gap in every port range: B's plan
  // must show exactly the ports (so the firewall rules) that B's enable then opens.
  for (const ns of [GAP, A]) {
    const e = await orama('namespace', 'enable', 'webrtc', '--namespace', ns);
    t.equal(e.code, 0, `${ns} enabled: ${e.out.slice(-2000)}`);
  }
  // The gap is wherever GAP's media block was (another namespace, e.g. bin/demo's, may hold the first one).
  const gapMedia = String(JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', GAP, '--json')).stdout).nodes[0].ports.sfu_media).replace('-', ':');
  t.equal((await orama('namespace', 'disable', 'webrtc', '--namespace', GAP)).code, 0, `${GAP} disabled: a gap in the port ranges`);
  const rulesOf = (out: string) => new Set([...out.matchAll(new RegExp(`\\+ ufw rule (.+?)  \\(set webrtc-${B}\\)`, 'g'))].map((m) => m[1]));
  const planB = await orama('namespace', 'enable', 'webrtc', '--namespace', B, '--plan');
  t.equal(planB.code, 2, `${B} --plan: changes pending`);
  const planned = rulesOf(planB.out);
  t.ok([...planned].some((r) => r.startsWith(`allow ${gapMedia}/udp `)), `the plan fills the SFU media gap left by ${GAP} (${gapMedia})`);
  const e = await orama('namespace', 'enable', 'webrtc', '--namespace', B);
  t.equal(e.code, 0, `${B} enabled: ${e.out.slice(-2000)}`);
  t.same([...rulesOf(e.out)].sort(), [...planned].sort(), 'enable opened exactly the ports the plan showed');
  const statusOf = async (ns: string) => JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', ns, '--json')).stdout) as { healthy: boolean; nodes: NodeStatus[] };
  const [sa, sb] = [await statusOf(A), await statusOf(B)];
  t.ok(sa.healthy && sb.healthy, 'both namespaces healthy');
  const mediaMax = (n: NodeStatus) => Number(String(n.ports.sfu_media).split('-')[1]);
  const ca = frontCa(cluster.inventory);
  const credsFor = async (ns: string, subject: string, status = sa) => {
    const tok = (await orama('token', 'mint', '--namespace', ns, '--subject', subject)).stdout.trim();
    const res = await frontOf(ca, `https://ns-${ns}.orama.test`)(status.nodes[0].public_ip, `/v1/webrtc/turn/credentials`, { method: 'POST', headers: { authorization: `Bearer ${tok}` } });
    t.equal(res.status, 200, `${ns}: credentials for ${subject}`);
    return (await res.json()) as { username: string; credential: string; urls: string[] };
  };
  const mallory = await credsFor(A, 'mallory');
  t.match(mallory.username, new RegExp(`^\\d+:${A}:mallory$`), 'the username carries the subject (per-user quota key)');
  const turnA = sa.nodes.filter((n) => n.turn_up);
  const turnB = sb.nodes.filter((n) => n.turn_up);
  t.equal(turnA.length, 2, 'A has two TURN nodes');
  const clients: TurnClient[] = [];
  t.teardown(async () => { for (const c of clients) await c.close().catch(() => {}); });
  const open = async (node: NodeStatus, creds: { username: string; credential: string }, transport: 'udp' | 'tcp' = 'udp') => {
    const c = await TurnClient.open({ host: node.public_ip, port: Number(node.ports.turn_listen), transport, username: creds.username, password: creds.credential });
    clients.push(c);
    return c;
  };

  await t.test('1. coturn: TCP relays, foreign peers, foreign or forged credentials are refused', async (t) => {
    const turn = turnA[0];
    const tcpRelay = await (await open(turn, mallory, 'tcp')).allocate({ relay: 'tcp' });
    t.notOk(tcpRelay.ok, `TCP relay allocation (RFC 6062) refused (code ${tcpRelay.ok ? '-' : tcpRelay.code})`);
    const c = await open(turn, mallory);
    const alloc = await c.allocate();
    t.ok(alloc.ok, 'a UDP relay allocation with gateway credentials works');
    if (alloc.ok) t.match(alloc.relayed.ip, /^10\.0\.0\.\d+$/, 'relayed from the WireGuard address');
    const refused: [string, string][] = [
      ['public (TEST-NET-1)', '192.0.2.10'],
      ['public (TEST-NET-3)', '203.0.113.10'],
      ['loopback', '127.0.0.1'],
      ['link-local', '169.254.1.1'],
      ['the WireGuard underlay of a node (private, not an SFU)', cluster.hosts[1].internalIp],
      ['the public bridge of the test host (private, not an SFU)', `${cluster.config.pubNet}.1`],
      ['a WireGuard address that is no SFU', '10.0.0.200'],
      ['IPv4-mapped IPv6 loopback (CVE-2026-27624)', '::ffff:127.0.0.1'],
      ['IPv4-mapped IPv6 of an SFU address', `::ffff:${sa.nodes[1].wg_ip}`],
      ['IPv6 loopback', '::1'],
    ];
    for (const [what, ip] of refused) {
      const r = await c.createPermission(ip);
      t.notOk(r.ok, `permission for ${what} ${ip} refused (code ${r.ok ? '-' : r.code})`);
    }
    for (const n of sa.nodes) t.ok((await c.createPermission(n.wg_ip)).ok, `permission for the SFU address ${n.wg_ip} granted`);

    const expired = `${Math.floor(Date.now() / 1000) - 60}:${A}:mallory`;
    const secretA = (await onNode(turn.node, `sed -n 's/^static-auth-secret=//p' /etc/orama/webrtc/${A}/turnserver.conf`));
    const exp = await (await open(turn, { username: expired, credential: turnCredential(secretA, expired) })).allocate();
    t.notOk(exp.ok, `an expired username is refused even with a valid HMAC (code ${exp.ok ? '-' : exp.code})`);
    const forged = await (await open(turn, { username: mallory.username, credential: turnCredential('not-the-secret', mallory.username) })).allocate();
    t.notOk(forged.ok, `a credential signed with another secret is refused (code ${forged.ok ? '-' : forged.code})`);
    const spoofed = `${mallory.username.split(':')[0]}:${A}:alice`;
    const sp = await (await open(turn, { username: spoofed, credential: mallory.credential })).allocate();
    t.notOk(sp.ok, `another subject with mallory's credential is refused: the HMAC covers the subject (code ${sp.ok ? '-' : sp.code})`);
    t.equal(await onNode(turn.node, `journalctl -u orama-namespace-turn@${A} --no-pager | grep -c 'database is locked' || true`), '0', 'coturn never found its user database locked (its schema exists before coturn starts)');
    const bTurn = turnB[0];
    const cross = await (await open(bTurn, mallory)).allocate();
    t.notOk(cross.ok, `A's credentials are refused by B's coturn (code ${cross.ok ? '-' : cross.code})`);
  });

  await t.test('1b. the allocation quota is per user: one user over quota, another still allocates', async (t) => {
    const turn = turnA[1];
    const quota = Number(await onNode(turn.node, `sed -n 's/^user-quota=//p' /etc/orama/webrtc/${A}/turnserver.conf`));
    t.ok(quota > 0, `user-quota=${quota}`);
    const hog = await credsFor(A, 'hog');
    let granted = 0;
    let last: Awaited<ReturnType<TurnClient['allocate']>> | undefined;
    for (let i = 0; i < quota + 1; i++) {
      last = await (await open(turn, hog)).allocate();
      if (last.ok) granted++;
    }
    t.equal(granted, quota, `${quota} allocations granted to one user`);
    t.ok(last && !last.ok && last.code === 486, `the next one: 486 Allocation Quota Reached (got ${last && !last.ok ? last.code : 'ok'})`);
    const other = await (await open(turn, await credsFor(A, 'bystander'))).allocate();
    t.ok(other.ok, 'another user of the same namespace still allocates');
  });

  await t.test('2. relayed UDP reaches A\'s own SFU media ports and nothing else on the mesh', async (t) => {
    const turn = turnA[0];
    const turnNode = sa.nodes.find((n) => n.node === turn.node)!;
    // A relayed datagram the owner-match table drops (on the TURN node, whatever its destination)
    // fails coturn's sendto() with EPERM ("udp send: Operation not permitted" in its log), and
    // coturn then relays nothing more for that allocation. So every attack gets an allocation of
    // its own, which first proves it relays (a control datagram to a port of A's own SFU media
    // range on the same node): a drop can never pass because the allocation was dead anyway.
    type Target = { what: string; node: NodeStatus; port: number; expect: boolean; alloc: number };
    const targets: Target[] = [];
    const negatives = (n: NodeStatus) => {
      const b = sb.nodes.find((x) => x.node === n.node)!;
      return [
        { what: `DNS on ${n.node}`, port: 53 },
        { what: `B's SFU media range on ${n.node}`, port: mediaMax(b) },
        { what: `a spare port on ${n.node}`, port: 40999 },
        { what: `A's SFU signaling port over UDP on ${n.node}`, port: Number(n.ports.sfu_signal) },
      ];
    };
    // one allocation per attack: a control datagram to that node's own A SFU media port, then the attack
    let alloc = 0;
    for (const n of sa.nodes) {
      const own = n === turnNode ? ", the TURN node's own address (over lo)" : '';
      negatives(n).forEach((x, i) => {
        alloc++;
        targets.push({ what: `A's own SFU media range on ${n.node}${own} (control ${alloc})`, node: n, port: mediaMax(n) - i, expect: true, alloc });
        targets.push({ ...x, what: `${x.what}${own}`, node: n, expect: false, alloc });
      });
    }
    // One listener per node, bound as root to every target port of that node: it says when it is
    // bound, then counts what each port receives for a few seconds.
    const ready = `/tmp/turn-wall-ready-${process.pid}`;
    const listen = (n: NodeStatus) => udpListener(n.node, n.wg_ip, targets.filter((x) => x.node.node === n.node).map((x) => x.port), ready, 8);
    const listening = sa.nodes.map(listen);
    await eventually('the listeners are bound on every node', async () => (await Promise.all(sa.nodes.map((n) => exitCode(n.node, `test -e ${ready}`)))).every((c) => c === 0), 10_000);
    const attacker = await credsFor(A, 'mallory-relay'); // a quota of its own: one allocation per attack
    for (let a = 1; a <= alloc; a++) {
      const c = await open(turn, attacker);
      t.ok((await c.allocate()).ok, `allocation ${a}`);
      for (const n of sa.nodes) t.ok((await c.createPermission(n.wg_ip)).ok, `allocation ${a}: permission for the SFU address ${n.wg_ip}`);
      for (const x of targets.filter((y) => y.alloc === a)) {
        for (let i = 0; i < 3; i++) c.send({ ip: x.node.wg_ip, port: x.port }, Buffer.from(`wall-test ${x.what}`));
        await new Promise((r) => setTimeout(r, 150));
      }
    }
    const byNode = new Map(sa.nodes.map((n, i) => [n.node, listening[i]]));
    for (const x of targets) {
      const got = Number((await byNode.get(x.node.node)!)[x.port]);
      if (x.expect) t.ok(got > 0, `${x.what}: relayed (${got} datagrams)`);
      else t.equal(got, 0, `${x.what}: dropped`);
    }
  });


  await t.test('2b. the mesh firewall alone (no coturn, no owner match): only A\'s relay ports reach A\'s SFU media', async (t) => {
    // Root on a TURN node is not coturn's user, so the owner-match table does not apply: what gets
    // through is decided by the receiving node's ufw set alone — the layer behind coturn's peer list.
    const from = sa.nodes.find((n) => n.node === turnA[0].node)!;
    const to = sa.nodes.find((n) => !n.turn_up)!;
    const toB = sb.nodes.find((n) => n.node === to.node)!;
    const relayMax = Number(String(from.ports.turn_relay).split('-')[1]);
    const cases = [
      { what: `from A's relay port to A's SFU media on ${to.node}`, sport: relayMax, port: mediaMax(to) - 20, expect: true },
      { what: `from a port outside A's relay range to A's SFU media on ${to.node}`, sport: 40998, port: mediaMax(to) - 21, expect: false },
      { what: `from A's relay port to B's SFU media on ${to.node}`, sport: relayMax, port: mediaMax(toB) - 20, expect: false },
      { what: `from A's relay port to DNS on ${to.node}`, sport: relayMax, port: 53, expect: false },
    ];
    const ready = `/tmp/turn-wall-mesh-${process.pid}`;
    const listening = udpListener(to.node, to.wg_ip, cases.map((c) => c.port), ready, 5);
    await eventually('the listener is bound', async () => (await exitCode(to.node, `test -e ${ready}`)) === 0, 10_000);
    for (const c of cases) {
      // From the first source port at or below the chosen one that is free (coturn holds some of
      // A's relay ports for its allocations).
      await onNode(from.node, `python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in range(${c.sport}, ${c.sport} - 50, -1):
    try:
        s.bind(("${from.wg_ip}", p)); break
    except OSError:
        pass
for i in range(3): s.sendto(b"mesh-test", ("${to.wg_ip}", ${c.port}))'`);
    }
    const counts = await listening;
    for (const c of cases) {
      if (c.expect) t.ok(counts[c.port] > 0, `${c.what}: accepted (${counts[c.port]} datagrams)`);
      else t.equal(counts[c.port], 0, `${c.what}: dropped by ${to.node}'s ufw`);
    }
  });

  await t.test('3. the cluster database refuses requests without its credentials', async (t) => {
    const [n1, n2] = cluster.hosts;
    const url = `http://${n2.wgIp}:4001`;
    const q = encodeURIComponent('SELECT count(*) FROM namespace_webrtc_config');
    t.equal(await onNode(n1.name, `curl -s -o /dev/null -w '%{http_code}' '${url}/db/query?q=${q}'`), '401', 'an unauthenticated query from another node: 401');
    t.equal(await onNode(n1.name, `curl -s -o /dev/null -w '%{http_code}' -u admin:wrong '${url}/db/query?q=${q}'`), '401', 'a wrong password: 401');
    t.equal(await onNode(n1.name, `curl -s -o /dev/null -w '%{http_code}' --netrc-file /etc/orama/rqlite/probe.netrc '${url}/db/query?q=${q}'`), '401', 'the readiness probe user may not query (rqlite answers 401 for a missing permission)');
    t.equal(await onNode(n1.name, `curl -s -o /dev/null -w '%{http_code}' --netrc-file /etc/orama/rqlite/probe.netrc '${url}/readyz'`), '200', 'but may ask for readiness');
    t.match(await onNode(n1.name, `curl -s --netrc-file /etc/orama/rqlite/admin.netrc '${url}/db/query?q=${q}'`), /"values":\[\[\d+\]\]/, 'the admin user queries');
    t.equal(await onNode(n1.name, `stat -c '%a %U' /etc/orama/rqlite/users.json /etc/orama/rqlite/gateway.password | sort -u`), '600 root', 'the users file and client passwords are root\'s only');
    // The secrets themselves, from the controller: none may appear on any process's command line.
    const credDir = dbCredentialsDir(cluster.config);
    const secrets = readdirSync(credDir).map((f) => readFileSync(join(credDir, f), 'utf8').trim());
    const users = (YAML.parse(readFileSync(join(root, 'roles', 'rqlite', 'defaults', 'main.yml'), 'utf8')).rqlite_users as { name: string }[]).map((u) => u.name);
    t.same(readdirSync(credDir).sort(), [...users].sort(), `a password on the controller for each database user of roles/rqlite (${credDir})`);
    const db = new Database(state, { readonly: true });
    secrets.push(...(db.prepare('SELECT turn_secret FROM namespace_webrtc_config').all() as { turn_secret: string }[]).map((r) => r.turn_secret));
    db.close();
    for (const h of cluster.hosts) {
      const args = await onNode(h.name, 'ps -eo args');
      t.notOk(secrets.some((s) => args.includes(s)), `${h.name}: no database password or TURN secret on any process's arguments`);
    }
  });

  await t.test('4. every unit runs as its own namespace user, sandboxed, with its own credentials', async (t) => {
    const node = turnA[0].node;
    const bHere = turnB.some((n) => n.node === node);
    const units = [`orama-namespace-turn@${A}`, `orama-namespace-sfu@${A}`, `orama-namespace-webrtc-gateway@${A}`, ...(bHere ? [`orama-namespace-turn@${B}`] : []), `orama-namespace-sfu@${B}`, 'orama-rqlite'];
    const users = new Set<string>();
    for (const u of units) {
      const show = await onNode(node, `systemctl show -p User -p NoNewPrivileges -p ProtectSystem -p PrivateDevices -p CapabilityBoundingSet -p MemoryMax -p TasksMax ${u}`);
      const p = Object.fromEntries(show.split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
      t.match(p.User, /^orama-/, `${u}: runs as ${p.User}`);
      users.add(p.User);
      t.same([p.NoNewPrivileges, p.ProtectSystem, p.PrivateDevices, p.CapabilityBoundingSet], ['yes', 'strict', 'yes', ''], `${u}: NoNewPrivileges, ProtectSystem=strict, PrivateDevices, no capabilities`);
      t.ok(Number(p.MemoryMax) > 0 && Number(p.TasksMax) > 0, `${u}: MemoryMax=${p.MemoryMax} TasksMax=${p.TasksMax} set (nspawn may not enforce them)`);
      const score = await onNode(node, `systemd-analyze security ${u}.service 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \\([0-9.]*\\).*/\\1/p'`);
      t.ok(Number(score) > 0 && Number(score) <= 2.5, `${u}: systemd-analyze security ${score} (goal ≤ 2.5)`);
    }
    t.equal(users.size, units.length, 'one user per service per namespace');
    const sfuA = `orama-sfu-${A}`;
    for (const f of [`/etc/orama/webrtc/${B}/turn-secret`, `/etc/orama/webrtc/${B}/internal-key`, `/etc/orama/webrtc/${B}/jwt-key`, `/run/credentials/orama-namespace-sfu@${B}.service/turn-secret`, '/etc/orama/rqlite/gateway.password', `/etc/orama/webrtc/${A}/turn-secret`]) {
      t.not(await exitCode(node, `setpriv --reuid ${sfuA} --regid ${sfuA} --clear-groups cat ${f} >/dev/null 2>&1`), 0, `A's SFU user cannot read ${f}`);
    }
    t.equal(await onNode(node, `stat -c '%a %U' /etc/orama/webrtc/${A}/turnserver.conf`), '600 root', 'the coturn config (TURN secret) is root\'s; coturn gets it as a credential');
    t.match(await onNode(node, `cat /proc/$(systemctl show -p MainPID --value orama-namespace-turn@${A})/cmdline | tr '\\0' ' '`), /turnserver -c \/run\/credentials\/orama-namespace-turn@wall-a\.service\/turnserver\.conf/, 'coturn reads its config from its credentials directory');
  });

  await t.test('5. the browsers\' network reaches no WireGuard address, even routed through a node', async (t) => {
    const { netns, sh, remove } = clientNetns(cluster, 'owall', 61);
    t.teardown(remove);
    // The attacker routes the WireGuard subnet through a node's public address.
    sh(`ip -n ${netns} route add 10.0.0.0/24 via ${cluster.hosts[0].publicIp}`);
    for (const h of cluster.hosts) {
      const db = sh(`ip netns exec ${netns} curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://${h.wgIp}:4001/readyz || true`).trim();
      t.equal(db, '000', `the database on ${h.wgIp} is unreachable from the browsers' network`);
      const sig = sh(`ip netns exec ${netns} curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://${h.wgIp}:${sa.nodes.find((n) => n.node === h.name)!.ports.sfu_signal}/health || true`).trim();
      t.equal(sig, '000', `A's SFU signaling on ${h.wgIp} is unreachable from the browsers' network`);
    }
  });
});
