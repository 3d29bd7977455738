// Where a role moved from Ansible must behave as it did there: strict undefined variables (an
// error naming the variable, file and line — `is defined` and `default` still pass), the tests on
// registered results, to_json / to_nice_json and trailing newlines byte for byte as Ansible writes
// them; and the prefetch's batch framing, which must give back every byte of every script.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { evalCondition, pythonJson, renderString, renderText } from '../../src/provision/template.ts';
import { apply } from '../../src/provision/engine.ts';
import { batchScript, parseBatch } from '../../src/provision/prefetch.ts';
import { tempDir } from '../helpers/tmp.ts';
import { described } from '../helpers/described.ts';


t.test('undefined is an error, named; is defined and default let it through', async (t) => {
  const ctx = { node: {}, d: { a: { b: 2 } }, l: [1, 2], hostvars: { h: { wg: 'w' } }, r: { changed: true } };
  t.match(described(() => evalCondition('node.has_turn', ctx, { file: '/p.yml', line: 7 })), /^\/p\.yml:7.*undefined variable: "node\.has_turn" is undefined/, 'an attribute in when: names it and the task');
  t.match(described(() => evalCondition('nope == 1', ctx)), /"nope" is undefined.*`nope \| default\(\.\.\.\)` or `nope is defined`/, 'a top-level name gets the hint');
  t.match(described(() => renderString('{{ d.a.c }}', ctx)), /"d\.a\.c" is undefined/);
  t.match(described(() => renderString('{{ d["q"] }}', ctx)), /"d\.q" is undefined/);
  t.match(described(() => renderString('{% for i in missing %}{{ i }}{% endfor %}', ctx)), /"missing" is undefined/, 'a loop over nothing');
  t.match(described(() => renderText('a\nb = {{ zz }}\n', ctx, { file: '/roles/x/templates/t.j2' })), /^\/roles\/x\/templates\/t\.j2:2.*"zz" is undefined/, 'a template file: its own line');
  t.equal(evalCondition('nope is defined', ctx), false);
  t.equal(evalCondition('node.has_turn is undefined', ctx), true, 'is undefined, through an attribute');
  t.equal(evalCondition('node.a.b.c is defined', ctx), false, 'a chain under an undefined attribute');
  t.equal(evalCondition('nope is defined and nope.x', ctx), false, 'and short-circuits');
  t.equal(renderString('{{ node.has_turn | default(false) }}', ctx), false);
  t.equal(renderString('{{ nope | d("z") }}', ctx), 'z');
  t.equal(renderString('{{ hostvars["h"].wg }}', ctx), 'w');
  t.equal(renderString('{% for i in l %}{{ i }}{% endfor %}{% set y = 3 %}{{ y }}', ctx), '123', 'loop and set variables are defined');
  t.equal(renderString('{{ d.a.b }}', { ...ctx, d: { a: { b: null } } }), null, 'null (YAML ~) is defined, as None is in Ansible');
});

t.test("Ansible's tests on results and strings", async (t) => {
  const ctx = { r: { changed: true, failed: false }, s: { skipped: true }, v: 'bookworm-12' };
  t.equal(evalCondition('r is changed', ctx), true);
  t.equal(evalCondition('r is failed', ctx), false);
  t.equal(evalCondition('r is succeeded and r is success', ctx), true);
  t.equal(evalCondition('s is skipped', ctx), true);
  t.equal(evalCondition('v is match("book")', ctx), true);
  t.equal(evalCondition('v is match("12")', ctx), false, 'match anchors at the start');
  t.equal(evalCondition('v is search("12")', ctx), true);
});

t.test('to_json, to_nice_json and trailing newlines as Ansible writes them', async (t) => {
  const v = { b: [1, 2.5, 'é'], a: { x: null, y: true }, e: [], f: {} };
  t.equal(pythonJson(v), '{"b": [1, 2.5, "\\u00e9"], "a": {"x": null, "y": true}, "e": [], "f": {}}');
  t.equal(pythonJson(v, 4), '{\n    "a": {\n        "x": null,\n        "y": true\n    },\n    "b": [\n        1,\n        2.5,\n        "\\u00e9"\n    ],\n    "e": [],\n    "f": {}\n}', 'to_nice_json sorts keys, indents 4');
  t.equal(renderString('{{ v | to_json }}', { v: { a: 1 } }), '{"a": 1}');
  // Each case checked against ansible-playbook 2.14 (the template module) on this machine.
  t.equal(renderText('p = {% for h in [1,2] %}{{ h }}{% endfor %}\n', {}), 'p = 12\n', 'the newline after a closing tag on the last line is kept');
  t.equal(renderText('p = {% for h in [1,2] %}{{ h }}{% if not loop.last %},{% endif %}{% endfor %}\n\n', {}), 'p = 1,2\n\n', 'as many trailing newlines as the template');
  t.equal(renderText('p = {% for h in [1,2] %}{{ h }}{% endfor %}\nlast\n', {}), 'p = 12last\n', 'trim_blocks inside the file');
});

t.test('a task with an undefined variable fails naming it; nothing runs after it on that host', async (t) => {
  const d = tempDir(t, 'strict-');
  writeFileSync(join(d, 'inv.yml'), 'all:\n  hosts:\n    localhost: { connection: local }\n');
  writeFileSync(join(d, 'p.yml'), `- hosts: all
  gather_facts: false
  tasks:
    - name: guarded
      debug: { msg: "skipped" }
      when: optional_flag is defined and optional_flag
    - name: typo
      debug: { msg: "x" }
      when: optinal_flag
    - name: after
      command: { cmd: "touch ${d}/after" }
`);
  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  const r = await apply({ playbook: join(d, 'p.yml'), inventory: join(d, 'inv.yml'), out: sink });
  t.ok(r.failed, 'the run fails');
  t.match(out, /skipping: \[localhost\]|skipped: \[localhost\]/, 'the guarded task is skipped, not an error');
  t.match(out, new RegExp(`failed: \\[localhost\\]: ${d.replace(/[/.]/g, '\\$&')}/p\\.yml:7:\\d+.*"optinal_flag" is undefined`), 'file, line and the variable');
  t.notMatch(out, /TASK \[after\][\s\S]*changed/, 'the next task did not run on the failed host');
});

t.test('batch framing returns every byte of every script, exit codes included', async (t) => {
  const requests = [
    { script: 'printf "a\\nb"', become: false },
    { script: 'echo err >&2; exit 3', become: false },
    { script: "printf '\\377\\000x'", become: false },
    { script: 'cat', stdin: 'fed\n', become: false },
    { script: "echo 'it''s'; case x in x) echo ok ;; esac", become: false },
    { script: 'exit 0', become: false },
  ];
  const out = execFileSync('sh', ['-c', batchScript(requests)], { encoding: 'utf8' });
  const got = parseBatch(out, requests.length);
  t.ok(got, 'parsed');
  const direct = requests.map((r) => {
    try {
      return { code: 0, stdout: execFileSync('sh', ['-c', r.script], { input: r.stdin ?? '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }), stderr: '' };
    } catch (e) {
      const x = e as { status: number; stdout: string; stderr: string };
      return { code: x.status, stdout: x.stdout, stderr: x.stderr };
    }
  });
  t.same(got, direct, 'each result is what running the script alone gives');
  t.equal(parseBatch(out.replace(/---/, '-'), requests.length), undefined, 'a damaged reply is refused (its tasks then ask one by one)');
});

t.test('a retried task (until:) asks the host again instead of reusing a batched answer', async (t) => {
  const d = tempDir(t, 'retry-');
  const marker = join(d, 'appears-later');
  writeFileSync(join(d, 'inv.yml'), 'all:\n  hosts:\n    localhost: { connection: local }\n');
  writeFileSync(join(d, 'p.yml'), `- hosts: all
  gather_facts: false
  tasks:
    - name: another look, so the two are asked in one batch
      stat: { path: ${d} }
    - name: wait for it
      stat: { path: ${marker} }
      register: st
      until: st.stat.exists
      retries: 10
      delay: 1
`);
  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  // The marker appears while the run waits for it: the batch (asked first) said it was absent.
  const later = setTimeout(() => writeFileSync(marker, 'x'), 1500);
  t.teardown(() => clearTimeout(later));
  const r = await apply({ playbook: join(d, 'p.yml'), inventory: join(d, 'inv.yml'), out: sink, timings: true });
  t.notOk(r.failed, out);
  t.match(out, /TIMINGS: .*; 1 fact batches answered 2 scripts/, 'both looks were asked in one batch');
});
