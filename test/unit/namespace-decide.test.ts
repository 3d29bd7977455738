// The decisions of `orama namespace enable webrtc` made before anything runs: TURN node choice,
// port blocks, and the TURN TLS material the inventory declares.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { chooseEngine, chooseTurnNodes, decide, engineFlag, firstFreeBlock, turnTlsPort } from '../../src/namespace/decide.ts';
import { turnTlsMaterial } from '../../src/namespace/tls.ts';
import { loadCluster } from '../../src/namespace/nodes.ts';
import { enableWebrtc } from '../../src/namespace/webrtc.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { PORT_PLAN } from '../../src/store/store.ts';
import { checkSfuConfigFile, DEFAULT_ENGINE } from '../../src/sfu/config.ts';
import { MEDIASOUP_WORKER_BIN, enableVars, serviceConfigs, turnUrls } from '../../src/namespace/vars.ts';
import type { PortAllocation } from '../../src/store/store.ts';
import { described } from '../helpers/described.ts';
import { formatStatus } from '../../src/namespace/status.ts';

const alloc = (node: string, namespace: string, kind: PortAllocation['kind'], portStart: number, portEnd: number): PortAllocation => ({ node, namespace, kind, portStart, portEnd, createdAt: 0 });
const hosts = ['node1', 'node2', 'node3'];

t.test('TURN nodes: by capacity, kept once chosen, always in inventory order', async (t) => {
  t.same(chooseTurnNodes(hosts, [], 'a'), ['node1', 'node2'], 'empty cluster: first two by name');
  const other = [alloc('node1', 'demo', 'turn_relay', 49152, 49951), alloc('node2', 'demo', 'turn_relay', 49152, 49951)];
  t.same(chooseTurnNodes(hosts, other, 'b'), ['node1', 'node3'], 'node3 is free; then node1 by name; listed in inventory order');
  // Once allocated, the same nodes in the same order however the store returns them.
  const mine = [alloc('node3', 'b', 'turn_relay', 49152, 49951), alloc('node1', 'b', 'turn_relay', 49952, 50751)];
  t.same(chooseTurnNodes(hosts, [...other, ...mine], 'b'), ['node1', 'node3']);
  t.same(chooseTurnNodes(hosts, [...mine].reverse().concat(other), 'b'), ['node1', 'node3']);
});

t.test('first free port block', async (t) => {
  t.same(firstFreeBlock([], 'sfu_media'), [20000, 20499]);
  t.same(firstFreeBlock([alloc('node1', 'x', 'sfu_media', 20000, 20499)], 'sfu_media'), [20500, 20999]);
  t.same(firstFreeBlock([alloc('node1', 'x', 'sfu_media', 20500, 20999)], 'sfu_media'), [20000, 20499], 'a gap at the start is reused');
  t.same(firstFreeBlock([alloc('node1', 'x', 'turn_listen', 3478, 3478)], 'turn_listen'), [3479, 3479], 'one coturn per IP owns 3478');
  const full = Array.from({ length: 100 }, (_, i) => alloc('node1', `n${i}`, 'sfu_signal', 30000 + i, 30000 + i));
  t.throws(() => firstFreeBlock(full, 'sfu_signal'), /no free sfu_signal block of 1 ports left in 30000-30099/);
});

t.test('TURN over TLS: declared in the inventory, checked before anything runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'turn-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const selfSigned = (name: string) => execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-days', '2', '-subj', `/CN=${name}`], { stdio: 'ignore' });
  selfSigned('a');
  selfSigned('b');
  writeFileSync(join(dir, 'junk.crt'), 'not a certificate');
  const inventory = (vars: string) => {
    const file = join(dir, `inv-${Math.random().toString(36).slice(2)}.yml`);
    writeFileSync(file, `all:\n  hosts:\n    node1: { connection: local, public_ip: 203.0.113.1, wg_ip: 10.0.0.1 }\n    node2: { connection: local, public_ip: 203.0.113.2, wg_ip: 10.0.0.2 }\n    node3: { connection: local, public_ip: 203.0.113.3, wg_ip: 10.0.0.3${vars ? `, ${vars}` : ''} }\n  children:\n    cluster:\n      vars: { turn_tls_cert: a.crt, turn_tls_key: a.key }\n      hosts: { node1: {}, node2: {}, node3: {} }\n`);
    return loadCluster(file);
  };
  const ok = inventory('');
  const m = turnTlsMaterial(ok, ['node1', 'node3']);
  t.same([...m.keys()], ['node1', 'node3'], 'only the TURN nodes get material');
  t.match(m.get('node1')!.cert, /^-----BEGIN CERTIFICATE-----/);
  t.equal(String(m.get('node1')!.key), '(sensitive)', 'the key is a Secret');
  t.equal(turnTlsPort(3478), 5349, 'the standard TLS port for the first namespace on a node');
  t.equal(turnTlsPort(3480), 5351);
  for (const [vars, msg] of [
    ['turn_tls_key: b.key', /host node3: turn_tls_key: b\.key is not the key of the certificate a\.crt/],
    ['turn_tls_cert: junk.crt', /host node3: turn_tls_cert: junk\.crt is not a PEM certificate/],
    ['turn_tls_cert: missing.crt', /host node3: turn_tls_cert: cannot read .*missing\.crt: ENOENT/],
    ['turn_tls_key: null', /host node3: turn_tls_cert and turn_tls_key go together/],
  ] as const) {
    const bad = inventory(vars);
    t.throws(() => turnTlsMaterial(bad, ['node1', 'node3']), { message: msg });
  }
});

t.test('plan and apply agree: the ports a plan predicts are the ports the store then allocates (a gap included)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'decide-'));
  const store = await openSqliteStore(join(dir, 'state.db'));
  t.teardown(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  const nodes = hosts.map((name, i) => ({ name, wgIp: `10.0.0.${i + 1}` }));
  const take = async (ns: string) => {
    const d = decide(ns, nodes, await store.listAllocations());
    for (const m of d.missing) {
      const { rangeMin, rangeMax, size } = PORT_PLAN[m.kind];
      await store.allocatePorts(m.node, ns, m.kind, size, rangeMin, rangeMax);
    }
  };
  await take('first');
  await take('second');
  await take('third');
  await store.releasePorts('second'); // a gap in every range on every node
  const predicted = decide('fourth', nodes, await store.listAllocations());
  t.ok(predicted.missing.length > 0, 'a plan for a new namespace predicts blocks it does not hold yet');
  t.equal(predicted.nodes.node1.sfu_media_min, 20500, 'the plan predicts the gap left by "second"');
  await take('fourth');
  const applied = decide('fourth', nodes, await store.listAllocations());
  t.same(applied.missing, [], 'after apply every block is held');
  t.same(applied.nodes, predicted.nodes, 'every port (and so every firewall rule) is what the plan showed');
  t.same(applied.turnNodes, predicted.turnNodes, 'and the same TURN nodes');
});

t.test('the namespace firewall: wg0 rules only between the namespace\'s own relay and media ports', async (t) => {
  const nodes = hosts.map((name, i) => ({ name, wgIp: `10.0.0.${i + 1}` }));
  const d = decide('fw', nodes, []);
  const n3 = d.nodes.node3; // not a TURN node
  t.notOk(n3.has_turn);
  t.same(n3.firewall.filter((r) => !r.interface).map((r) => `${r.port}/${r.proto}`), [], 'a non-TURN node opens nothing in public (its gateway is a socket behind the front\'s 443, a node-base rule)');
  const media = n3.firewall.filter((r) => r.interface === 'wg0' && r.proto === 'udp');
  t.same(media.map((r) => [r.from, r.from_port, r.to, r.port]), [['10.0.0.1', '49152:49951', '10.0.0.3', '20000:20499'], ['10.0.0.2', '49152:49951', '10.0.0.3', '20000:20499']], 'its SFU media only from the TURN nodes\' relay ranges');
  const n1 = d.nodes.node1;
  t.ok(n1.firewall.some((r) => r.interface === 'wg0' && r.from === '10.0.0.3' && r.from_port === '20000:20499' && r.port === '49152:49951'), 'a TURN node\'s relay range only from the SFUs\' media ranges');
  t.notOk(n1.firewall.some((r) => r.interface === 'wg0' && r.from === '10.0.0.1'), 'no wg0 rule for the node\'s own address (local traffic is the owner-match table\'s)');
});

t.test('service configs are built and checked on the controller: a wrong value fails the plan, naming the node', async (t) => {
  const nodes = hosts.map((name, i) => ({ name, publicIp: `203.0.113.${i + 1}`, wgIp: `10.0.0.${i + 1}`, vars: {} }));
  const decision = decide('cfg', nodes, []);
  const input = { namespace: 'cfg', baseDomain: 'orama.test', nodes, decision, turnSecret: 's'.repeat(43), jwtKey: null, apiKeys: [], tls: new Map(), artifacts: { sfu: '', gateway: '', seed: '', client: [] } as never, sfuEngine: 'werift' as const };
  const configs = serviceConfigs(input);
  t.same(Object.keys(configs), hosts, 'one SFU and one gateway config per node');
  t.equal(configs.node2.sfu.listen_ip, '10.0.0.2', 'the SFU binds the node\'s WireGuard address');
  t.equal(configs.node2.sfu.turn_secret_file, '/run/credentials/orama-namespace-sfu@cfg.service/turn-secret', 'secrets are credential files, never values');
  t.same(configs.node1.gateway.store, { driver: 'rqlite', urls: ['http://10.0.0.1:4001', 'http://10.0.0.2:4001', 'http://10.0.0.3:4001'], username: 'gateway', password_file: '/run/credentials/orama-namespace-webrtc-gateway@cfg.service/rqlite-password' });
  const broken = { ...decision, nodes: { ...decision.nodes, node3: { ...decision.nodes.node3, sfu_media_min: 20499, sfu_media_max: 20000 } } };
  t.throws(() => serviceConfigs({ ...input, decision: broken }), /host node3: namespace cfg: invalid SFU config: media_port_min must be below media_port_max/);
  t.same(configs.node1.gateway.listen, { socket: '/run/orama-gateway-cfg/http.sock' }, 'the gateway listens on a socket in its RuntimeDirectory, which the front derives from ns-cfg.…');
  t.equal(configs.node1.gateway.trust_proxy, true, 'and trusts the front\'s X-Forwarded-For');
  const badPort = { ...decision, nodes: { ...decision.nodes, node1: { ...decision.nodes.node1, sfu_signal_port: 70000 } } };
  t.throws(() => serviceConfigs({ ...input, decision: badPort }), /host node1: namespace cfg: .*65535/);
});

t.test('TURN URLs by address (default) or, per TURN node, by its name in the namespace zone', async (t) => {
  const mk = (vars: Record<string, unknown>) => hosts.map((name, i) => ({ name, publicIp: `203.0.113.${i + 1}`, wgIp: `10.0.0.${i + 1}`, vars }));
  const nodes = mk({});
  const decision = decide('names', nodes, []);
  const [a, b] = decision.turnNodes;
  const byAddress = turnUrls(nodes, decision, 'ns-names.orama.test');
  t.ok(byAddress.every((u) => /^turns?:203\.0\.113\.\d:\d+\?transport=(udp|tcp)$/.test(u)), `by address: ${byAddress.join(' ')}`);
  const named = mk({ turn_url_host: 'name' });
  const byName = turnUrls(named, decision, 'ns-names.orama.test');
  t.same(byName.map((u) => /^turn:([^:]+):/.exec(u)![1]), [`${a}.ns-names.orama.test`, `${a}.ns-names.orama.test`, `${b}.ns-names.orama.test`, `${b}.ns-names.orama.test`], 'by name: NODE.ns-NAME.BASE, the zone\'s own A records');
  t.same(byName.map((u) => u.split(':').slice(2).join(':')), byAddress.map((u) => u.split(':').slice(2).join(':')), 'the same ports and transports');
  const cfg = serviceConfigs({ namespace: 'names', baseDomain: 'orama.test', nodes: named, decision, turnSecret: 's'.repeat(43), jwtKey: null, apiKeys: [], tls: new Map(), artifacts: { sfu: '', gateway: '', seed: '', client: [] } as never, sfuEngine: 'werift' as const });
  t.same(cfg.node1.gateway.turn.urls, byName, 'the gateways hand out the names');
  const zone = enableVars({ namespace: 'names', baseDomain: 'orama.test', nodes: named, decision, turnSecret: 's'.repeat(43), jwtKey: null, apiKeys: [], tls: new Map(), artifacts: { sfu: '', gateway: '', seed: '', client: [] } as never, sfuEngine: 'werift' as const }).dns_zone;
  for (const n of [a, b]) t.ok(zone.nameservers.some((x) => x.name === `${n}.ns-names.orama.test` && x.ip === nodes.find((y) => y.name === n)!.publicIp), `the zone answers ${n}.ns-names.orama.test with its address`);
});

t.test('the SFU engine: --sfu-engine, else the namespace\'s recorded one, else the inventory\'s sfu_engine, else the default', async (t) => {
  t.equal(DEFAULT_ENGINE, 'mediasoup', 'mediasoup is the default: less CPU per forwarded stream at equal load in bench:sfu (docs/benchmarks.md)');
  const cases: [Parameters<typeof chooseEngine>[1], string, string][] = [
    [{}, DEFAULT_ENGINE, 'default'],
    [{ inventory: 'mediasoup' }, 'mediasoup', 'inventory'],
    [{ recorded: 'werift', inventory: 'mediasoup' }, 'werift', 'recorded'],
    [{ recorded: null, inventory: 'mediasoup' }, 'mediasoup', 'inventory'],
    [{ recorded: 'mediasoup' }, 'mediasoup', 'recorded'],
    [{ flag: 'mediasoup', recorded: 'werift', inventory: 'werift' }, 'mediasoup', 'flag'],
    [{ flag: 'werift', recorded: 'mediasoup', inventory: 'mediasoup' }, 'werift', 'flag'],
  ];
  for (const [input, engine, from] of cases) t.same(chooseEngine('e', input), { engine, from }, `${JSON.stringify(input)} → ${engine} (${from})`);
  t.throws(() => chooseEngine('e', { recorded: 'janus' }), { message: /namespace e: the operator store records SFU engine "janus", which this orama does not know \(engines: werift, mediasoup\); choose one with --sfu-engine/ });
  t.same(chooseEngine('e', { flag: 'werift', recorded: 'janus' }), { engine: 'werift', from: 'flag' }, 'a flag replaces an unknown recorded engine');
  t.equal(engineFlag(undefined), undefined);
  t.equal(engineFlag('mediasoup'), 'mediasoup');
  for (const bad of ['', 'Mediasoup', 'janus']) t.throws(() => engineFlag(bad), { message: `--sfu-engine ${JSON.stringify(bad)}: must be one of werift, mediasoup` });
});

t.test('the inventory\'s sfu_engine: one engine name for every host of the cluster, an error naming file, line, host and key otherwise', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'engine-inv-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const load = (hostVars: [string, string, string], groupVars = '') => {
    const file = join(dir, `inv-${Math.random().toString(36).slice(2)}.yml`);
    const h = (i: number) => `    node${i}: { connection: local, public_ip: 203.0.113.${i}, wg_ip: 10.0.0.${i}${hostVars[i - 1] ? `, ${hostVars[i - 1]}` : ''} }`;
    writeFileSync(file, `all:\n  hosts:\n${h(1)}\n${h(2)}\n${h(3)}\n  children:\n    cluster:\n${groupVars ? `      vars: { ${groupVars} }\n` : ''}      hosts: { node1: {}, node2: {}, node3: {} }\n`);
    return file;
  };
  t.equal(loadCluster(load(['', '', ''])).sfuEngine, undefined, 'not set: no inventory choice');
  t.equal(loadCluster(load(['', '', ''], 'sfu_engine: mediasoup')).sfuEngine, 'mediasoup', 'a var of the group "cluster"');
  t.equal(loadCluster(load(['sfu_engine: werift', 'sfu_engine: werift', 'sfu_engine: werift'])).sfuEngine, 'werift', 'or the same on every host');
  const bad = load(['', 'sfu_engine: janus', '']);
  t.match(described(() => loadCluster(bad)), /inv-\w+\.yml:4:\d+, key "sfu_engine": host node2: sfu_engine is "janus"; it is one of werift, mediasoup/, 'a bad value: file:line, key, host, the engines');
  const badGroup = load(['', '', ''], 'sfu_engine: 5');
  t.match(described(() => loadCluster(badGroup)), /inv-\w+\.yml:8:\d+, key "sfu_engine": host node1: sfu_engine is 5; it is one of werift, mediasoup/, 'where the group var was written');
  t.throws(() => loadCluster(load(['sfu_engine: mediasoup', '', ''])), { message: /sfu_engine differs between the hosts of group "cluster" \(node1: mediasoup; node2, node3: \(not set\)\): a namespace runs one engine on every node/ });
});

t.test('each node\'s sfu.json names the engine and the worker the sfu role ships; the playbook gets the engine', async (t) => {
  const nodes = hosts.map((name, i) => ({ name, publicIp: `203.0.113.${i + 1}`, wgIp: `10.0.0.${i + 1}`, vars: {} }));
  const decision = decide('eng', nodes, []);
  const input = { namespace: 'eng', baseDomain: 'orama.test', nodes, decision, turnSecret: 's'.repeat(43), jwtKey: null, apiKeys: [], tls: new Map(), artifacts: { sfu: '', gateway: '', seed: '', client: [], mediasoup_worker: '/x/mediasoup-worker' } as never, sfuEngine: 'werift' as const };
  for (const engine of ['werift', 'mediasoup'] as const) {
    const cfg = serviceConfigs({ ...input, sfuEngine: engine });
    for (const h of hosts) {
      t.match(cfg[h].sfu, { engine, mediasoup_worker_bin: '/opt/orama/lib/mediasoup-worker' }, `${h}: engine ${engine}, the worker's path on the node`);
      t.doesNotThrow(() => checkSfuConfigFile(cfg[h].sfu), 'and the SFU\'s own schema takes it');
    }
    t.match(enableVars({ ...input, sfuEngine: engine }), { sfu_engine: engine, mediasoup_worker_bin: MEDIASOUP_WORKER_BIN });
  }
  t.equal(MEDIASOUP_WORKER_BIN, '/opt/orama/lib/mediasoup-worker');
});

t.test('enable records the engine with the namespace\'s other decisions, before the playbook runs; a plan records nothing', async (t) => {
  // Hosts where nothing listens: every run stops at the first connection, after the decisions.
  const dir = mkdtempSync(join(tmpdir(), 'engine-rec-'));
  const store = await openSqliteStore(join(dir, 'state.db'));
  t.teardown(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'front.key'), '-out', join(dir, 'front.crt'),
    '-days', '2', '-subj', '/CN=*.orama.test', '-addext', 'subjectAltName=DNS:*.orama.test'], { stdio: 'ignore' });
  const inventory = (groupVars: string) => {
    const file = join(dir, `inv-${Math.random().toString(36).slice(2)}.yml`);
    const h = (i: number) => `    node${i}: { address: 127.0.0.2, port: ${i}, public_ip: 127.0.0.${i + 1}, wg_ip: 10.0.0.${i} }`;
    writeFileSync(file, `all:\n  vars: { front_tls_cert: front.crt, front_tls_key: front.key }\n  hosts:\n${h(1)}\n${h(2)}\n${h(3)}\n  children:\n    cluster:\n      vars: { ${groupVars} }\n      hosts: { node1: {}, node2: {}, node3: {} }\n`);
    return file;
  };
  // `other`: the engine that is not the default, named by the second inventory.
  const other = DEFAULT_ENGINE === 'werift' ? 'mediasoup' : 'werift';
  const plain = inventory('');
  const soup = inventory(`sfu_engine: ${other}`);
  const enable = async (namespace: string, inv: string, more: { sfuEngine?: string; plan?: boolean } = {}) => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c) => (text += c));
    const r = await enableWebrtc({ namespace, inventory: inv, store, baseDomain: 'orama.test', out, ...more });
    t.ok(r.failed, 'the run itself fails (no host answers)');
    return text;
  };
  const recorded = async (ns: string) => (await store.getWebrtcConfig(ns))?.sfuEngine;

  await enable('rec', plain, { plan: true, sfuEngine: other });
  t.equal(await store.getWebrtcConfig('rec'), null, 'a plan stores nothing, the engine neither');
  await enable('rec', plain);
  t.equal(await recorded('rec'), DEFAULT_ENGINE, 'first enable without flag or inventory var: the default, recorded');
  const kept = await enable('rec', soup);
  t.equal(await recorded('rec'), DEFAULT_ENGINE, 'the inventory\'s sfu_engine does not switch a namespace that has one');
  t.match(kept, new RegExp(`namespace rec: keeps its SFU engine ${DEFAULT_ENGINE}; the inventory's sfu_engine ${other} is for namespaces enabled from now on \\(--sfu-engine ${other} switches this one\\)`), 'and enable says so');
  const switched = await enable('rec', plain, { sfuEngine: other });
  t.equal(await recorded('rec'), other, '--sfu-engine switches it, recorded before the playbook (a failed run re-runs with it)');
  t.match(switched, new RegExp(`namespace rec: SFU engine ${DEFAULT_ENGINE} -> ${other} \\(--sfu-engine\\)`));
  await enable('rec', plain);
  t.equal(await recorded('rec'), other, 'a re-run without the flag keeps it');
  await enable('rec', soup, { sfuEngine: DEFAULT_ENGINE });
  t.equal(await recorded('rec'), DEFAULT_ENGINE, 'the flag wins over the inventory');
  await enable('fresh', soup);
  t.equal(await recorded('fresh'), other, 'a namespace enabled for the first time takes the inventory\'s');
  const before = await store.getWebrtcConfig('rec');
  await t.rejects(enableWebrtc({ namespace: 'rec', inventory: plain, store, baseDomain: 'orama.test', sfuEngine: 'janus', out: new PassThrough() }), { message: /--sfu-engine "janus": must be one of werift, mediasoup/ });
  t.same(await store.getWebrtcConfig('rec'), before, 'a bad --sfu-engine changes nothing');
});

t.test('webrtc-status shows the namespace\'s engine, each node\'s, and a node an engine switch has not reached', async (t) => {
  const node = (n: string, engine: string | null) => ({ node: n, public_ip: '203.0.113.1', wg_ip: '10.0.0.1', has_turn: false, sfu_up: true, turn_up: null, gateway_up: true, sfu_health: '200', sfu_engine: engine, ports: {} });
  const s = { namespace: 'st', enabled: true, engine: 'mediasoup', turn_nodes: [], url: null, dns: [], nodes: [node('node1', 'mediasoup'), node('node2', 'werift'), node('node3', null)], healthy: true };
  const text = formatStatus(s);
  t.match(text, /^namespace st: WebRTC enabled; SFU engine mediasoup; /);
  t.match(text, /\nnode1 +\S+ +\S+ +up +mediasoup +- +up /, 'a column per node');
  t.match(text, /\nnode3 +\S+ +\S+ +up +- +/, 'no sfu.json (yet): -');
  t.match(text, /\nengine  node2 runs werift, the namespace's is mediasoup: orama namespace enable webrtc --namespace st finishes the switch\n/);
  t.notMatch(text, /engine  node[13]/, 'only the node behind');
  t.match(formatStatus({ ...s, engine: null, nodes: [node('node1', null)] }), /SFU engine -;/, 'nothing recorded: -');
});
