// The decisions of `orama namespace enable webrtc` that are pure: TURN node choice and port blocks.
import t from 'tap';
import { chooseTurnNodes, firstFreeBlock } from '../../src/namespace/webrtc.ts';
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
