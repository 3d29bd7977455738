// Task keywords on the `local` connection (two inventory hosts on the controller): loop + when,
// block/rescue/always, retries/until, run_once, delegate_to, failed_when + ignore_errors, tags.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apply } from '../../src/provision/engine.ts';
import { root } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const fx = join(root, 'test', 'fixtures', 'keywords');

async function run(extra: Record<string, unknown>, opts: { tags?: string[]; skipTags?: string[] } = {}) {
  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  const r = await apply({ playbook: join(fx, 'keywords.yml'), inventory: join(fx, 'inv.yml'), extraVars: extra, out: sink, ...opts });
  return { r, out };
}

t.test('task keywords', async (t) => {
  const workdir = tempDir(t, 'kw-');
  const { r, out } = await run({ workdir });
  t.notOk(r.failed, out);
  for (const h of ['alpha', 'beta']) {
    const f = (s: string) => existsSync(join(workdir, `${h}.${s}`));
    t.ok(f('block') && f('rescued') && f('always'), `${h}: block ran, its failure was rescued, always ran`);
    t.notOk(f('unreachable'), `${h}: the task after the failure in the block did not run`);
    t.equal(readFileSync(join(workdir, `${h}.count`), 'utf8').trim(), '3', `${h}: until retried to the third attempt`);
    t.equal(readFileSync(join(workdir, `${h}.once`), 'utf8').trim(), 'once-alpha', `${h}: sees the run_once result of the first host`);
    t.ok(existsSync(join(workdir, `delegated-${h}`)), `${h}: delegated task ran with ${h}'s variables`);
    t.ok(f('tagged'), `${h}: untagged run includes tagged tasks`);
    t.equal(readFileSync(join(workdir, `${h}.taskvars`), 'utf8').trim(), 'once-alpha+x', `${h}: task vars see registered results and the loop item`);
  }
  t.match(out, /alpha\s+: ok=\d+ changed=\d+ unreachable=0 failed=0 skipped=0 rescued=1 ignored=1/, 'recap counts rescued and ignored');

  const only = tempDir(t, 'kw-');
  const tagged = await run({ workdir: only }, { tags: ['special'] });
  t.notOk(tagged.r.failed, tagged.out);
  t.ok(existsSync(join(only, 'alpha.tagged')), '--tags special runs the tagged task');
  t.notOk(existsSync(join(only, 'alpha.block')), '--tags special skips the rest');
  const skipped = tempDir(t, 'kw-');
  await run({ workdir: skipped }, { skipTags: ['special'] });
  t.notOk(existsSync(join(skipped, 'alpha.tagged')), '--skip-tags special skips it');
  t.ok(existsSync(join(skipped, 'alpha.block')));
});

async function runFile(file: string, workdir: string) {
  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  const r = await apply({ playbook: join(fx, file), inventory: join(fx, 'inv.yml'), extraVars: { workdir }, out: sink });
  return { r, out };
}

t.test('serial + any_errors_fatal: a failure in the first batch ends the play', async (t) => {
  const workdir = tempDir(t, 'kw-');
  const { r, out } = await runFile('fatal.yml', workdir);
  t.ok(r.failed, 'the run fails');
  t.ok(existsSync(join(workdir, 'serial-alpha')), 'the first batch (alpha) ran');
  t.notOk(existsSync(join(workdir, 'serial-beta')), 'the second batch never started');
  t.match(out, /any_errors_fatal/);
});

t.test('max_fail_percentage 0: one failed host stops the play for the others', async (t) => {
  const workdir = tempDir(t, 'kw-');
  const { r, out } = await runFile('maxfail.yml', workdir);
  t.ok(r.failed);
  t.notOk(existsSync(join(workdir, 'after-alpha')), 'alpha (which did not fail) stopped too');
  t.match(out, /1 of 2 hosts failed, more than max_fail_percentage 0%/);
});
