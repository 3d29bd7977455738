// The decisions of `orama namespace enable webrtc` made before anything runs: TURN node choice,
// port blocks, and the TURN TLS material the inventory declares.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseTurnNodes, firstFreeBlock, turnTlsMaterial, turnTlsPort } from '../../src/namespace/webrtc.ts';
import { Inventory } from '../../src/provision/inventory.ts';
import type { PortAllocation } from '../../src/store/store.ts';

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
    writeFileSync(file, `all:\n  hosts:\n    node1: { connection: local }\n    node2: { connection: local }\n    node3: { connection: local${vars ? `, ${vars}` : ''} }\n  children:\n    cluster:\n      vars: { turn_tls_cert: a.crt, turn_tls_key: a.key }\n      hosts: { node1: {}, node2: {}, node3: {} }\n`);
    return { file, hosts: Inventory.load(file).select('cluster') };
  };
  const ok = inventory('');
  const m = turnTlsMaterial(ok.file, ok.hosts, ['node1', 'node3']);
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
    t.throws(() => turnTlsMaterial(bad.file, bad.hosts, ['node1', 'node3']), { message: msg });
  }
});
