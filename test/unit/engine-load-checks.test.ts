// Checks made when a playbook is loaded, before any play runs: `serial:`.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlaybookLoader, serialBatchSize, serialProblem } from '../../src/provision/playbook.ts';
import { tempDir } from '../helpers/tmp.ts';
import { described } from '../helpers/described.ts';

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
