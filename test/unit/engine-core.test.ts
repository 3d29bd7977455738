// Inventory, host patterns, variable precedence, templating, schema errors with positions, secrets.
import t from 'tap';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';
import { Inventory } from '../../src/provision/inventory.ts';
import { PlaybookLoader } from '../../src/provision/playbook.ts';
import { renderString, evalCondition } from '../../src/provision/template.ts';
import { Redactor, Secret } from '../../src/provision/secret.ts';
import { parseYaml } from '../../src/provision/source.ts';
import { parseExtraVars } from '../../src/cli/provision-args.ts';
import { apply } from '../../src/provision/engine.ts';
import { tempDir } from '../helpers/tmp.ts';
import { described } from '../helpers/described.ts';

const fx = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const inv = Inventory.load(join(fx, 'inventory', 'hosts.yml'));
const names = (p: string) => inv.select(p).map((h) => h.name);

t.test('host patterns', async (t) => {
  t.same(names('all'), ['node1', 'node2', 'node3', 'db1']);
  t.same(names('cluster'), ['node1', 'node2', 'node3'], 'group with children');
  t.same(names('turn:db1'), ['node1', 'node2', 'db1'], 'union');
  t.same(names('cluster:&turn'), ['node1', 'node2'], 'intersection');
  t.same(names('cluster:!turn'), ['node3'], 'exclusion');
  t.same(names('node*'), ['node1', 'node2', 'node3'], 'glob');
  t.throws(() => names('nope'), /no host or group named "nope"/);
});

t.test('connection keys and variable layers', async (t) => {
  const n3 = inv.hosts.get('node3')!;
  t.equal(n3.port, 2222);
  t.equal(n3.user, 'vagrant');
  t.equal(n3.become, true);
  t.same(inv.hosts.get('node1')!.groups, ['all', 'cluster', 'turn'], 'outer groups first');
  t.equal(inv.groupVars('cluster').from_group_file, 'cluster', 'group_vars/ folder read');
  t.equal(inv.hosts.get('node2')!.vars.level, 'host', 'host_vars/ folder read');
});

t.test('templating keeps native types and reports undefined variables', async (t) => {
  t.same(renderString('{{ ports }}', { ports: [3478, 5349] }), [3478, 5349]);
  t.equal(renderString('{{ a }}-{{ b }}', { a: 1, b: 'x' }), '1-x');
  t.equal(renderString('{{ x | default("d") }}', {}), 'd');
  t.throws(() => renderString('{{ missing_var }}', {}), /"missing_var" is undefined/);
  t.ok(evalCondition(['a > 1', 'b is defined'], { a: 2, b: 0 }));
  t.notOk(evalCondition('a > 1', { a: 1 }));
});

t.test('extra vars: key=value is a YAML scalar, @file, JSON', async (t) => {
  const d = tempDir(t, 'ev-');
  writeFileSync(join(d, 'v.yml'), 'secret_thing: !secret abcdef\nn: 1\n');
  const v = parseExtraVars(['port=3478', 'name=myapp', `@${join(d, 'v.yml')}`, '{"flag": true}']);
  t.equal(v.port, 3478);
  t.equal(v.name, 'myapp');
  t.ok(v.secret_thing instanceof Secret);
  t.equal(v.flag, true);
  t.throws(() => parseExtraVars(['novalue']), /expected key=value/);
  // A secret from a file, not on the command line (ps shows argv): `-e 'k=!secret_file PATH'`.
  writeFileSync(join(d, 'pw'), 's3cret-from-file\n');
  const f = parseExtraVars([`db_password=!secret_file ${join(d, 'pw')}`, 'inline=!secret abc']);
  t.ok(f.db_password instanceof Secret && (f.db_password as Secret).reveal() === 's3cret-from-file', '-e k=!secret_file PATH is a secret read from the file');
  t.ok(f.inline instanceof Secret, '-e k=!secret v is a secret too (not a plain string with a warning)');
  t.equal(described(() => parseExtraVars(['k=[unclosed'])), '-e "k=[unclosed": the value of k is not valid YAML: Flow sequence must end with a ] (column 10)', 'a broken YAML value names -e and the key, no code frame');
  t.equal(described(() => parseExtraVars(['k=a: 1\nb: ['])), '-e "k=a: 1\\nb: [": the value of k is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] (line 2, column 5)', 'a value of several lines: line and column');
});

t.test('schema errors name file:line:col and the key', async (t) => {
  const d = tempDir(t, 'pb-');
  const f = join(d, 'p.yml');
  writeFileSync(f, '- hosts: all\n  tasks:\n    - name: t1\n      file: { path: /x, state: nonsense }\n');
  t.match(described(() => PlaybookLoader.load(f)), /p\.yml:4:\d+, task "t1".*"state" must be one of/);
  writeFileSync(f, '- hosts: all\n  taks: []\n');
  t.match(described(() => PlaybookLoader.load(f)), /p\.yml:2:3.*unknown key "taks"/);
  writeFileSync(f, '- hosts: all\n  tasks:\n    - name: two modules\n      file: { path: /x }\n      copy: { dest: /y, content: z }\n');
  t.match(described(() => PlaybookLoader.load(f)), /p\.yml:5:7.*more than one module \(file, copy\)/);
  t.match(described(() => parseYaml('a: [1,\n', 'broken.yml')), /broken\.yml:\d+:\d+: invalid YAML/);
});

t.test('secrets print as (sensitive) everywhere', async (t) => {
  const s = new Secret('hunter2-very-secret');
  t.equal(String(s), '(sensitive)');
  t.equal(JSON.stringify({ s }), '{"s":"(sensitive)"}');
  const r = new Redactor();
  r.collect({ nested: [s] });
  t.equal(r.scrub('token=hunter2-very-secret;'), 'token=(sensitive);');
  t.same(r.scrubValue({ a: 'x hunter2-very-secret' }), { a: 'x (sensitive)' });
  // a PEM key appears line by line in a diff: every material line is scrubbed on its own
  const pem = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPm0Qf3r5E2u4Qm9Yw8\nxq1Jb0l3a2f8nQxYk2pLr0=\n-----END PRIVATE KEY-----\n';
  r.collect(new Secret(pem));
  t.equal(r.scrub('+MC4CAQAwBQYDK2VwBCIEIPm0Qf3r5E2u4Qm9Yw8\n+xq1Jb0l3a2f8nQxYk2pLr0='), '+(sensitive)\n+(sensitive)');
});

t.test('variable precedence on a local host: defaults < group < host < play < task < set_fact < extra', async (t) => {
  const d = tempDir(t, 'prec-');
  writeFileSync(join(d, 'inv.yml'), 'all:\n  vars: { v_all: all, v_group: all }\n  hosts:\n    localhost: { connection: local, v_host: host }\n  children:\n    g:\n      vars: { v_group: group, v_host: group }\n      hosts: { localhost: {} }\n');
  writeFileSync(
    join(d, 'p.yml'),
    [
      '- hosts: all',
      '  gather_facts: false',
      '  vars: { v_play: play, v_host: play-wins, v_extra: play }',
      '  tasks:',
      '    - set_fact: { v_fact: fact, v_play: fact-wins }',
      '    - name: show',
      '      debug: { msg: "{{ v_all }} {{ v_group }} {{ v_host }} {{ v_play }} {{ v_task }} {{ v_fact }} {{ v_extra }}" }',
      '      vars: { v_task: task }',
    ].join('\n'),
  );
  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  const r = await apply({ playbook: join(d, 'p.yml'), inventory: join(d, 'inv.yml'), extraVars: { v_extra: 'extra' }, out: sink });
  t.notOk(r.failed, out);
  t.match(out, 'all group play-wins fact-wins task fact extra');
});
