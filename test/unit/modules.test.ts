// Data-driven module cases: (args + facts) → planned changes and the exact steps apply would run.
import t from 'tap';
import { readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { modules } from '../../src/provision/modules/index.ts';
import { sha256 } from '../../src/provision/modules/files.ts';
import { validate } from '../../src/provision/schema.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'modules');

for (const f of readdirSync(dir).filter((x) => x.endsWith('.yml'))) {
  const name = f.replace(/\.yml$/, '');
  const module = modules[name];
  t.test(`module ${name}`, async (t) => {
    t.ok(module, `module ${name} is registered`);
    for (const c of parse(readFileSync(join(dir, f), 'utf8'))) {
      t.test(c.name, async (t) => {
        validate(module.schema, c.args, `fixture ${f}`);
        let args = c.args;
        const content = c.content ?? args.content;
        if (name === 'copy' || name === 'template') args = { ...args, _bytes: Buffer.from(content) };
        const facts = { ...c.facts };
        if (c.sha256_of_content) facts.sha256 = sha256(content);
        const p = module.plan(args, facts);
        if (c.failed) {
          t.match(p.failed, c.failed, 'the plan fails with a clear reason');
          t.same(p.steps, [], 'and would run nothing');
          return;
        }
        t.notOk(p.failed, 'plan does not fail');
        if (c.changes) t.same(p.changes.map((x) => [x.action, x.resource]), c.changes, 'changes');
        if (c.steps) t.same(p.steps.map((s) => s.display ?? s.script), c.steps, 'steps');
        if (c.steps?.length === 0) t.same(p.changes, [], 'no step means no change');
        if (c.diff) t.match(p.changes[0]?.diff ?? '', c.diff, 'diff');
        if (c.script_contains) t.match(p.steps[0]?.script ?? '', c.script_contains);
        if (c.result) t.match(p.result, c.result, 'result for register');
      });
    }
  });
}
