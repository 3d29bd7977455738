// Checks made when a playbook is loaded, before any play runs: duplicate keys (a linear check, so
// a huge vars mapping is no problem), `serial:`.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { PlaybookLoader, serialBatchSize, serialProblem } from '../../src/provision/playbook.ts';
import { firstDuplicateKey, parseYaml } from '../../src/provision/source.ts';
import { tempDir } from '../helpers/tmp.ts';
import { described } from '../helpers/described.ts';

t.test('duplicate keys: the same message and place as yaml\'s own check', async (t) => {
  const cases: [string, string][] = [
    ['a: 1\na: 2\n', 'f.yml:2:1: invalid YAML: Map keys must be unique'],
    ['- hosts: all\n  a: 1\n  a: 2\n', 'f.yml:3:3: invalid YAML: Map keys must be unique'],
    ['{a: 1, b: 2, a: 3}\n', 'f.yml:1:14: invalid YAML: Map keys must be unique'],
    ['a: 1\n"a": 2\n', 'f.yml:2:1: invalid YAML: Map keys must be unique'],
    // the first in the text: the nested one (line 3) before the outer one (line 4)
    ['x:\n  y: 1\n  y: 2\nx: 3\n', 'f.yml:3:3: invalid YAML: Map keys must be unique'],
    ['x: { a: 1 }\ny: [ {b: 1, b: 2} ]\n', 'f.yml:2:13: invalid YAML: Map keys must be unique'],
    // a duplicate before a syntax error is reported first
    ['a: 1\na: 2\nb: [1\n', 'f.yml:2:1: invalid YAML: Map keys must be unique'],
    // inside a key that is a mapping, and in a mapping in a flow sequence
    ['? { a: 1, a: 2 }\n: v\n', 'f.yml:1:11: invalid YAML: Map keys must be unique'],
    ['- [ {x: 1}, {y: 1, y: 2} ]\n', 'f.yml:1:20: invalid YAML: Map keys must be unique'],
    // the same keys in different mappings are no duplicate
    ['a: { k: 1 }\nb: { k: 2 }\n', 'no error'],
    // 1 and "1" are different keys (as in yaml's check)
    ['1: a\n"1": b\n', 'no error'],
  ];
  for (const [text, want] of cases) {
    t.equal(described(() => parseYaml(text, 'f.yml')), want, JSON.stringify(text));
    // yaml's own (quadratic) check says the same
    const doc = YAML.parseDocument(text, { uniqueKeys: true, prettyErrors: false });
    t.equal(doc.errors.some((e) => e.code === 'DUPLICATE_KEY'), want.includes('unique'), `yaml agrees on ${JSON.stringify(text)}`);
  }
});

t.test('duplicate keys: a mapping of 100 000 keys is checked in linear time, the duplicate\'s line right', async (t) => {
  const lines = ['- hosts: all', '  vars:'];
  for (let i = 0; i < 100_000; i++) lines.push(`    v${i}: ${i}`);
  const text = lines.join('\n') + '\n';
  const doc = YAML.parseDocument(text, { uniqueKeys: false });
  let t0 = performance.now();
  t.equal(firstDuplicateKey(doc), undefined, 'no duplicate in 100 000 distinct keys');
  const spent = performance.now() - t0;
  // yaml's own check takes minutes here; the linear one well under a second even on a busy machine.
  t.ok(spent < 3000, `checked in ${spent.toFixed(0)} ms`);
  // v4321 again as the last key: line 2 + 100 000 + 1
  const dup = `${text}    v4321: again\n`;
  t0 = performance.now();
  t.equal(described(() => parseYaml(dup, 'big.yml')), `big.yml:${lines.length + 1}:5: invalid YAML: Map keys must be unique`);
  t.ok(performance.now() - t0 < 20_000, 'parsed and checked in seconds');
});

t.test('serial: a positive integer or a percentage, refused at load with file:line', async (t) => {
  for (const ok of [1, 3, '2', '30%', '100%', '12.5%']) t.equal(serialProblem(ok), undefined, `${JSON.stringify(ok)} is fine`);
  for (const bad of [0, -1, '0', '', 'abc', '0%', '150%', 'x%', '1,2']) t.match(serialProblem(bad), `serial must be a positive integer or a percentage, got ${JSON.stringify(bad)}`);
  t.equal(serialBatchSize(2, 5), 2);
  t.equal(serialBatchSize('50%', 5), 2, 'a percentage rounds down');
  t.equal(serialBatchSize('10%', 3), 1, 'to 1 at least');
  const d = tempDir(t, 'serial-');
  const f = join(d, 'p.yml');
  writeFileSync(f, '- hosts: all\n  serial: 0\n  tasks: []\n');
  t.equal(described(() => PlaybookLoader.load(f)), `${f}:2:3, key "serial": serial must be a positive integer or a percentage, got 0`);
  writeFileSync(f, '- hosts: all\n  serial: "none"\n  tasks: []\n');
  t.match(described(() => PlaybookLoader.load(f)), /p\.yml:2:3, key "serial": .*got "none"/);
  writeFileSync(f, '- hosts: all\n  serial: "25%"\n  tasks: []\n');
  t.equal(PlaybookLoader.load(f)[0].serial, '25%');
});
