// `orama namespace enable|disable webrtc` end to end on the real test cluster: the plan changes
// nothing, enable brings up coturn on 2 nodes and SFU + gateway on 3, the gateway hands out TURN
// credentials that real coturn accepts, rooms are shared through the nodes' rqlite, and disable
// removes everything it added.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import Database from 'better-sqlite3';
import { rebootClusterNode, sshExec } from '../../src/cluster/cluster.ts';
import { clusterSuite } from '../helpers/cluster-suite.ts';
import { frontCa, frontOf } from '../helpers/front.ts';
import { recapChanged, run } from '../helpers/cli.ts';
import { turnCredential } from '../../src/webrtc/credentials.ts';
import { TurnClient } from '../../src/webrtc/turn-client.ts';
import { eventually, exitCode, udpListener } from '../helpers/cluster-shell.ts';

const NS = 'itest';

const sh = async (node: string, cmd: string) => (await sshExec(node, cmd)).stdout.trim();

t.test('namespace webrtc on the test cluster', async (t) => {
  const { cluster, state, orama, base } = await clusterSuite();
  t.equal(base.code, 0, 'node-base applied: ' + base.out.slice(-1500));
  await orama('namespace', 'disable', 'webrtc', '--namespace', NS); // leftovers of an interrupted run
  t.teardown(async () => {
    await orama('namespace', 'disable', 'webrtc', '--namespace', NS);
  });
  const secretOf = () => {
    const db = new Database(state, { readonly: true });
    try {
      return (db.prepare('SELECT turn_secret FROM namespace_webrtc_config WHERE namespace = ?').get(NS) as { turn_secret: string } | undefined)?.turn_secret;
    } finally {
      db.close();
    }
  };

  // An API key made before WebRTC is enabled lives in the operator store only; enable seeds it.
  const early = await orama('apikey', 'create', '--namespace', NS, '--subject', 'svc-early');
  t.equal(early.code, 0, early.code === 0 ? 'apikey create before enable' : early.out);
  t.match(early.out, /kept in the operator store only/);
  const earlyKey = early.stdout.trim();

  await t.test('--plan lists the changes and stores nothing', async (t) => {
    const p = await orama('namespace', 'enable', 'webrtc', '--namespace', NS, '--plan');
    t.equal(p.code, 2, p.out.slice(-1500));
    t.match(p.out, /\+ file \/etc\/orama\/webrtc\/itest\/turnserver\.conf/);
    t.match(p.out, /\+static-auth-secret=\(sensitive\)/, 'the coturn config diff shows the secret line, redacted');
    t.match(p.out, /Plan: \d+ to add/);
    t.equal(secretOf(), undefined, 'no config stored by a plan');
    t.equal(await sh('node1', 'test -e /etc/orama/webrtc/itest && echo yes || echo no'), 'no', 'nothing on the nodes');
  });

  await t.test('enable brings TURN up on 2 nodes, SFU and gateway on 3', async (t) => {
    const e = await orama('namespace', 'enable', 'webrtc', '--namespace', NS);
    t.equal(e.code, 0, e.out.slice(-3000));
    const secret = secretOf();
    t.ok(secret && secret.length >= 40, 'a 32-byte secret was stored');
    t.notMatch(e.out, secret!, 'the secret never printed');
    const s = await orama('namespace', 'webrtc-status', '--namespace', NS, '--json');
    t.equal(s.code, 0, s.out);
    const status = JSON.parse(s.stdout);
    t.equal(status.healthy, true);
    t.equal(status.nodes.filter((n: any) => n.sfu_up).length, 3, 'SFU on all 3 nodes');
    t.equal(status.nodes.filter((n: any) => n.turn_up).length, 2, 'TURN on 2 nodes');
    t.equal(status.dns.filter((d: { name: string }) => d.name.startsWith('turn.')).length, 2, 'turn.ns-itest A records for both TURN nodes');
    t.equal(status.dns.filter((d: { name: string }) => d.name === 'ns-itest.orama.test').length, 3, 'ns-itest A records for the three gateways');
    for (const h of cluster.hosts) {
      const listen = await sh(h.name, `ss -Hltn 'sport = :${status.nodes.find((n: any) => n.node === h.name).ports.sfu_signal}' | awk '{print $4}'`);
      t.match(listen, `${h.wgIp}:`, `${h.name}: the SFU listens on its WireGuard address`);
      t.notMatch(listen, /0\.0\.0\.0:|\*:/, `${h.name}: and on nothing else`);
    }
    // The SFU engine: mediasoup (the default) recorded and in every sfu.json; its worker shipped
    // to every node, with every library it links against.
    t.equal(status.engine, 'mediasoup', 'webrtc-status: the namespace\'s engine, the default, recorded');
    for (const h of cluster.hosts) {
      t.equal(status.nodes.find((n: any) => n.node === h.name).sfu_engine, 'mediasoup', `${h.name}: webrtc-status reads the engine from its sfu.json`);
      const sfuJson = JSON.parse(await sh(h.name, `cat /etc/orama/webrtc/${NS}/sfu.json`));
      t.match(sfuJson, { engine: 'mediasoup', mediasoup_worker_bin: '/opt/orama/lib/mediasoup-worker' }, `${h.name}: sfu.json names the engine and the worker`);
      t.equal(await sh(h.name, 'stat -c "%a %U" /opt/orama/lib/mediasoup-worker'), '755 root', `${h.name}: the worker is there, 0755 root`);
      const ldd = await sh(h.name, 'ldd /opt/orama/lib/mediasoup-worker');
      t.match(ldd, /libsrtp2\.so\.1 => \//, `${h.name}: ldd resolves the worker's libraries`);
      t.notMatch(ldd, /not found/, `${h.name}: none is missing`);
    }
    await t.test('the SFU\'s sandbox lets it start mediasoup\'s worker as its child', async (t) => {
      // The unit's own [Service] settings (user, sandbox, system-call filter, limits) on a
      // transient unit that runs the SFU's Node and starts the worker as mediasoup does (pipes on
      // fds 3 and 4): the worker's first message on its channel says it runs.
      const unit = await sh('node1', `cat /etc/systemd/system/orama-namespace-sfu@${NS}.service`);
      const service = unit.split(/^\[Service\]$/m)[1].split(/^\[/m)[0];
      const skip = /^(ExecStart|Restart|RestartSec|LoadCredential|KillSignal|KillMode|TimeoutStopSec|SyslogIdentifier)=/;
      const props = service.split('\n').filter((l) => /^[A-Z]\w+=/.test(l) && !skip.test(l));
      t.ok(props.some((p) => p.startsWith('SystemCallFilter=')) && props.some((p) => p.startsWith('User=')), `the unit's sandbox: ${props.length} settings`);
      const probe = `const { spawn } = require('node:child_process'); const os = require('node:os');
        const c = spawn('/opt/orama/lib/mediasoup-worker', ['--logLevel=warn'], { env: { MEDIASOUP_VERSION: 'probe' }, stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
        let err = ''; c.stdio[2].on('data', (d) => (err += d));
        const done = (r) => { console.log(JSON.stringify({ ...r, err, cpus: os.cpus().length, parallelism: os.availableParallelism() })); c.kill('SIGKILL'); };
        const timer = setTimeout(() => done({ running: false }), 10000);
        c.stdio[4].once('data', (d) => { clearTimeout(timer); done({ running: true, bytes: d.length }); });
        c.on('error', (e) => { clearTimeout(timer); done({ running: false, spawn: e.message }); });`;
      const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
      const cmd = `systemd-run --quiet --wait --pipe --collect ${props.map((p) => `-p ${q(p)}`).join(' ')} /opt/orama/runtime/node -e ${q(`eval(Buffer.from('${Buffer.from(probe).toString('base64')}', 'base64').toString())`)}`;
      const r = await sshExec('node1', cmd);
      const line = r.stdout.trim().split('\n').pop() ?? '';
      t.equal(r.code, 0, `systemd-run: ${r.stdout} ${r.stderr}`);
      const res = line.startsWith('{') ? JSON.parse(line) : {};
      t.equal(res.running, true, `the worker runs inside the SFU's sandbox: ${line} ${r.stderr}`);
      t.comment(`inside the sandbox: os.cpus() ${res.cpus}, os.availableParallelism() ${res.parallelism} (ProcSubset=pid hides /proc/cpuinfo)`);
    });
    const again = await orama('namespace', 'enable', 'webrtc', '--namespace', NS);
    t.equal(again.code, 0);
    t.equal(recapChanged(again.out), 0, 'enabling again changes nothing');
    t.equal(secretOf(), secret, 'and keeps the secret');
    // An engine switch, planned only: on every node sfu.json's engine line, the unit's MemoryMax
    // (werift's rule instead of mediasoup's), the SFU's restart — nothing else; nothing recorded.
    const sw = await orama('namespace', 'enable', 'webrtc', '--namespace', NS, '--plan', '--sfu-engine', 'werift');
    t.equal(sw.code, 2, sw.out.slice(-2000));
    t.match(sw.out, /namespace itest: SFU engine mediasoup -> werift \(--sfu-engine\)/);
    for (const h of cluster.hosts) {
      t.match(sw.out, new RegExp(`${h.name}: 0 to add, 3 to change, 0 to destroy\\s+~ file /etc/orama/webrtc/itest/sfu\\.json .*\\s+~ file /etc/systemd/system/orama-namespace-sfu@itest\\.service .*\\s+~ systemd unit orama-namespace-sfu@itest\\.service  \\(restart\\)\\n`), `${h.name}: the plan changes sfu.json and the SFU's unit, and restarts the SFU`);
    }
    t.match(sw.out, /-\s*"engine": "mediasoup",\s*\n\s*\+\s*"engine": "werift",/, 'sfu.json: its engine line');
    t.match(sw.out, /-MemoryMax=1024M\s*\n\s*\+MemoryMax=1G/, 'the unit: from mediasoup\'s 512M + 256M for each of the 2 cores\' workers to werift\'s 1G');
    t.equal(JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout).engine, 'mediasoup', 'a plan records nothing');
  });

  await t.test('the gateway issues credentials coturn accepts; rooms are shared between nodes', async (t) => {
    const status = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout);
    const front = frontOf(frontCa(cluster.inventory), status.url);
    const tok = (await orama('token', 'mint', '--namespace', NS, '--subject', 'alice', '--owner')).stdout.trim();
    const res = await front(status.nodes[2].public_ip, `/v1/webrtc/turn/credentials`, { method: 'POST', headers: { authorization: `Bearer ${tok}` } });
    t.equal(res.status, 200);
    const creds = await res.json();
    t.match(creds.username, new RegExp(`^\\d+:${NS}:alice$`), 'username expiry:namespace:subject');
    t.equal(creds.credential, turnCredential(secretOf()!, creds.username), 'HMAC-SHA1 of the stored per-namespace secret');
    t.equal(creds.urls.length, 4, 'udp and tcp urls of both TURN nodes');
    const turn = status.nodes.find((n: any) => n.turn_up);
    const port = turn.ports.turn_listen;
    const sfuIp = status.nodes[2].wg_ip;
    // Real relaying, not just sends: datagrams through an allocation made with the gateway's
    // credentials reach a listener on the namespace's SFU media range on another node.
    const sfu = status.nodes.find((n: any) => n.node !== turn.node);
    const mediaPort = Number(String(sfu.ports.sfu_media).split('-')[1]);
    const ready = `/tmp/itest-relay-${process.pid}`;
    const received = udpListener(sfu.node, sfu.wg_ip, [mediaPort], ready, 4);
    await eventually('the listener on the SFU node is bound', async () => (await exitCode(sfu.node, `test -e ${ready}`)) === 0, 10_000);
    const client = await TurnClient.open({ host: turn.public_ip, port: Number(port), transport: 'udp', username: creds.username, password: creds.credential });
    t.ok((await client.allocate()).ok, 'an allocation with the gateway credentials works');
    t.ok((await client.createPermission(sfu.wg_ip)).ok, 'with a permission for the SFU address');
    for (let i = 0; i < 3; i++) client.send({ ip: sfu.wg_ip, port: mediaPort }, Buffer.from('itest'));
    t.ok((await received)[mediaPort] > 0, 'and its datagrams reach the SFU media port on another node');
    await client.close();
    const bad = await run('timeout', ['15', 'turnutils_uclient', '-c', '-n', '1', '-m', '1', '-u', creds.username, '-w', 'not-the-credential', '-e', sfuIp, '-p', port, turn.public_ip]);
    t.match(bad.out, /Cannot complete Allocation/, 'a wrong credential is refused by coturn');
    const created = await front(status.nodes[0].public_ip, `/v1/webrtc/rooms`, { method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: JSON.stringify({ room_id: 'standup' }) });
    t.equal(created.status, 201);
    const list = await (await front(status.nodes[1].public_ip, `/v1/webrtc/rooms`, { headers: { authorization: `Bearer ${tok}` } })).json();
    t.ok(list.rooms.some((r: any) => r.room_id === 'standup'), 'a room created through node1 is listed by node2 (rqlite)');
  });

  await t.test('API keys: made before enable or after, then revoked — every node\'s gateway follows', async (t) => {
    const status = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout);
    const front = frontOf(frontCa(cluster.inventory), status.url);
    const statuses = (key: string) => Promise.all(status.nodes.map(async (n: any) =>
      (await front(n.public_ip, `/v1/webrtc/turn/credentials`, { method: 'POST', headers: { 'x-api-key': key } })).status));
    t.same(await statuses(earlyKey), [200, 200, 200], 'a key created before enable works on every node (seeded by enable)');

    const c = await orama('apikey', 'create', '--namespace', NS, '--subject', 'svc-late');
    t.equal(c.code, 0, c.code === 0 ? 'apikey create' : c.out.slice(-2000));
    const late = c.stdout.trim();
    t.match(late, /^oak_[0-9a-f]{12}_\S{43}$/, 'stdout carries the key and nothing else');
    t.match(c.out, /copied to the cluster database/);
    t.equal(c.out.split(late).length, 2, 'the key appears once (stdout), never in the sync output');
    t.same(await statuses(late), [200, 200, 200], 'a key created after enable works on every node at once');

    const id = late.split('_')[1];
    const p = await orama('apikey', 'revoke', '--namespace', NS, '--id', id, '--plan');
    t.equal(p.code, 2, p.code === 2 ? 'apikey revoke --plan' : p.out.slice(-1500));
    t.match(p.out, /plan: would revoke API key/);
    t.same(await statuses(late), [200, 200, 200], 'the plan revoked nothing');
    const r = await orama('apikey', 'revoke', '--namespace', NS, '--id', id);
    t.equal(r.code, 0, r.code === 0 ? 'apikey revoke' : r.out.slice(-1500));
    let after: number[] = [];
    for (let i = 0; i < 20; i++) { // a gateway trusts a key it verified for at most 5 s
      after = await statuses(late);
      if (after.every((s) => s === 401)) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    t.same(after, [401, 401, 401], 'revoked on every node within seconds');
    t.same(await statuses(earlyKey), [200, 200, 200], 'the other key is untouched');
    await orama('apikey', 'revoke', '--namespace', NS, '--id', earlyKey.split('_')[1]);
  });

  await t.test('TURN over TLS when the inventory declares a certificate; gone when it no longer does', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'itest-tls-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const [crt, key] = [join(dir, 'turn.crt'), join(dir, 'turn.key')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', `/CN=turn.ns-${NS}.orama.test`], { stdio: 'ignore' });
    const keyLines = readFileSync(key, 'utf8').split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'));
    const doc = YAML.parse(readFileSync(cluster.inventory, 'utf8'));
    doc.all.children.cluster.vars = { ...(doc.all.children.cluster.vars ?? {}), turn_tls_cert: crt, turn_tls_key: key };
    const inv = join(dir, 'inventory.yml');
    writeFileSync(inv, YAML.stringify(doc));

    const p = await orama('namespace', 'enable', 'webrtc', '--namespace', NS, '--plan', '-i', inv);
    t.equal(p.code, 2, p.out.slice(-2000));
    t.match(p.out, /\+tls-listening-port=\d+/, 'the plan shows coturn getting a TLS listener');
    t.match(p.out, /\+ file \/etc\/orama\/webrtc\/itest\/turn-tls\.key/);
    const e = await orama('namespace', 'enable', 'webrtc', '--namespace', NS, '-i', inv);
    t.equal(e.code, 0, e.out.slice(-2000));
    for (const out of [p.out, e.out]) t.notOk(keyLines.some((l) => out.includes(l)), 'no line of the private key in the plan or the apply output');

    const status = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout);
    const front = frontOf(frontCa(cluster.inventory), status.url);
    const tok = (await orama('token', 'mint', '--namespace', NS, '--subject', 'alice')).stdout.trim();
    const credsOf = async () => (await front(status.nodes[0].public_ip, `/v1/webrtc/turn/credentials`, { method: 'POST', headers: { authorization: `Bearer ${tok}` } })).json();
    const creds = await credsOf();
    const tlsUrls = creds.urls.filter((u: string) => u.startsWith('turns:'));
    t.equal(tlsUrls.length, 2, `a turns: URL per TURN node: ${creds.urls.join(' ')}`);
    const [, tlsIp, tlsPort] = /^turns:([\d.]+):(\d+)\?transport=tcp$/.exec(tlsUrls[0])!;
    const sfuIp = status.nodes[2].wg_ip;
    // -v prints the allocation as it happens (line-buffered: the client lingers waiting for peer
    // answers that never come, and the timeout ends it).
    // The handshake, with openssl: coturn serves our certificate on the TLS port.
    const hello = await run('sh', ['-c', `echo | timeout 10 openssl s_client -connect ${tlsIp}:${tlsPort} -brief 2>&1`]);
    t.match(hello.out, new RegExp(`CN ?= ?turn\\.ns-${NS}\\.orama\\.test`), 'TLS handshake with coturn, our certificate');
    const tlsAlloc = () => run('timeout', ['6', 'stdbuf', '-oL', 'turnutils_uclient', '-v', '-t', '-S', '-c', '-n', '1', '-m', '1', '-u', creds.username, '-w', creds.credential, '-e', sfuIp, '-p', tlsPort, tlsIp]);
    // An allocation over TLS. turnutils_uclient (-v prints as it goes; line-buffered because the
    // timeout ends it) stalls in its own SSL_connect in about half of its runs against coturn
    // 4.6.1 here, while openssl s_client never did: up to 10 tries (bounded, ≤ 60 s).
    let alloc = '';
    for (let i = 0; i < 10 && !/Received relay addr/.test(alloc); i++) alloc = (await tlsAlloc()).out;
    t.match(alloc, /Received relay addr: 10\.0\.0\.\d+:\d+/, 'an allocation over TLS with the gateway credentials works (relay on the WireGuard side)');
    const turnNode = status.nodes.find((n: any) => n.public_ip === tlsIp).node;
    t.equal(await sh(turnNode, `stat -c '%a %U' /etc/orama/webrtc/${NS}/turn-tls.key`), '600 root', 'the key file is root\'s only (coturn gets it as a credential)');
    const again = await orama('namespace', 'enable', 'webrtc', '--namespace', NS, '-i', inv);
    t.equal(again.code, 0, again.code === 0 ? 'enabling again with the same certificate succeeds' : again.out.slice(-2000));
    t.equal(recapChanged(again.out), 0, 'and changes nothing');

    const back = await orama('namespace', 'enable', 'webrtc', '--namespace', NS); // the inventory without a certificate
    t.equal(back.code, 0, back.out.slice(-2000));
    t.equal((await credsOf()).urls.filter((u: string) => u.startsWith('turns:')).length, 0, 'no turns: URL any more');
    t.equal(await sh(turnNode, `test -e /etc/orama/webrtc/${NS}/turn-tls.key && echo yes || echo no`), 'no', 'the key file is gone');
    const gone = await run('sh', ['-c', `echo | timeout 10 openssl s_client -connect ${tlsIp}:${tlsPort} -brief 2>&1`]);
    t.notMatch(gone.out, /CONNECTION ESTABLISHED/, 'and the TLS port no longer answers');
  });

  await t.test('a rebooted node brings its TURN, SFU and gateway back by itself', async (t) => {
    await rebootClusterNode(1);
    let status: any;
    for (let i = 0; i < 60; i++) {
      status = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout);
      if (status.healthy) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    t.equal(status.healthy, true, `healthy again after node1 rebooted: ${JSON.stringify(status.nodes[0])}`);
  });

  await t.test('disable removes services, files, firewall rules and state', async (t) => {
    const status = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout);
    const signalPort = String(status.nodes[0].ports.sfu_signal);
    const d = await orama('namespace', 'disable', 'webrtc', '--namespace', NS);
    t.equal(d.code, 0, d.out.slice(-2000));
    for (const h of cluster.hosts) {
      t.equal(await sh(h.name, `systemctl is-active orama-namespace-sfu@${NS} orama-namespace-turn@${NS} orama-namespace-webrtc-gateway@${NS} | sort -u`), 'inactive', `${h.name}: services stopped`);
      t.equal(await sh(h.name, `test -e /etc/orama/webrtc/${NS} && echo yes || echo no`), 'no', `${h.name}: files and secrets removed`);
      t.notMatch(await sh(h.name, 'ufw status'), signalPort, `${h.name}: namespace firewall rules removed`);
      t.equal(await sh(h.name, `test -e /run/orama-gateway-${NS} && echo yes || echo no`), 'no', `${h.name}: the gateway's socket is gone`);
      t.equal(await sh(h.name, `test -e /var/lib/orama/namespaces/${NS} && echo yes || echo no`), 'no', `${h.name}: the namespace's state directory is gone (no cluster_state.json: nothing to restore)`);
    }
    t.equal(secretOf(), undefined, 'config removed from the state');
    const q = encodeURIComponent(`SELECT (SELECT count(*) FROM webrtc_rooms WHERE namespace='${NS}') + (SELECT count(*) FROM namespace_webrtc_config WHERE namespace='${NS}')`).replace(/'/g, '%27');
    t.match(await sh('node1', `curl -s --netrc-file /etc/orama/rqlite/admin.netrc 'http://${cluster.hosts[0].wgIp}:4001/db/query?level=strong&q=${q}'`), /"values":\[\[0\]\]/, 'and from the cluster database (rooms, config; as its admin user)');
    const s = JSON.parse((await orama('namespace', 'webrtc-status', '--namespace', NS, '--json')).stdout);
    t.same(s.dns, [], 'DNS records removed');
    t.ok(s.nodes.every((n: any) => Object.keys(n.ports).length === 0), 'ports released');
  });
});
