// Batching never changes a plan: every playbook we ship and every engine fixture is planned (and
// the bench/Ansible-style ones applied) on the real nodes with the facts prefetched in batches and
// with one round trip per task; the per-host, per-task results and the plans must be identical.
// And batching really happens (else this proves nothing): --timings counts the batches.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { clusterSuite } from '../helpers/cluster-suite.ts';
import { provision as cli, recapChanged, root } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

/** changed= summed over the hosts of the --json recap. */
const changedOf = (out: string) => out.split('\n').filter((l) => l.startsWith('{"event":"recap"')).map((l) => Object.values<{ changed: number }>(JSON.parse(l).hosts).reduce((a, h) => a + h.changed, 0))[0];

interface Outcome {
  results: string[];
  plan: unknown;
}

/** The --json events of a run, made order-independent (hosts run in parallel). */
function outcome(out: string): Outcome {
  let task = '';
  const results: string[] = [];
  let plan: unknown;
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line);
    if (e.event === 'task') task = `${e.place} ${e.name}`;
    if (e.event === 'result') results.push(JSON.stringify([task, e.host, e.status, e.item ?? null, e.msg ?? null, e.changes]));
    if (e.event === 'plan') plan = { ...e, changes: [...e.changes].sort((a: object, b: object) => JSON.stringify(a).localeCompare(JSON.stringify(b))) };
  }
  return { results: results.sort(), plan };
}

const batchesOf = (out: string) => {
  const e = out.split('\n').filter((l) => l.startsWith('{"event":"timings"')).map((l) => JSON.parse(l))[0];
  return e ? e.batches : NaN;
};

t.test('batched and unbatched runs plan the same', async (t) => {
  const { cluster, base, orama } = await clusterSuite();
  t.equal(base.code, 0, 'node-base applied');
  const inv = cluster.inventory;
  const bench = join(root, 'bench', 'provision');
  const reset = () => cli(['apply', join(bench, 'reset.yml'), '-i', inv]);
  await reset();
  t.teardown(reset);

  const compare = async (t: Test, verb: 'plan' | 'apply', playbook: string, extra: string[] = []) => {
    const batched = await cli([verb, playbook, '-i', inv, '--json', '--timings', ...extra]);
    const unbatched = await cli([verb, playbook, '-i', inv, '--json', '--timings', '--no-batch', ...extra]);
    t.not(batched.code, 1, `${verb} batched ran: ${batched.out.slice(-1500)}`);
    t.equal(unbatched.code, batched.code, 'same exit code');
    t.same(outcome(unbatched.out), outcome(batched.out), 'same results per host and task, same plan');
    t.ok(batchesOf(batched.out) > 0, 'the batched run used fact batches');
    t.equal(batchesOf(unbatched.out), 0, '--no-batch used none');
    return batched;
  };

  for (const pb of ['playbooks/node-base.yml', 'test/fixtures/engine/site.yml', 'test/fixtures/ansible/site.yml', 'bench/provision/site.yml']) {
    await t.test(`plan ${pb} on the nodes as they are`, (t) => compare(t, 'plan', join(root, pb)).then(() => {}));
  }

  await t.test('the keyword fixtures (local hosts) plan the same', async (t) => {
    const kw = join(root, 'test', 'fixtures', 'keywords');
    for (const pb of ['keywords.yml', 'fatal.yml', 'maxfail.yml']) {
      const args = ['plan', join(kw, pb), '-i', join(kw, 'inv.yml'), '-e', `workdir=${tempDir(t, 'kw-batch-')}`, '--json'];
      const [a, b] = [await cli(args), await cli([...args, '--no-batch'])];
      t.equal(b.code, a.code, `${pb}: same exit code`);
      t.same(outcome(b.out), outcome(a.out), `${pb}: same results and plan`);
    }
  });

  await t.test("a namespace's enable and disable plan the same (webrtc-enable.yml, webrtc-disable.yml)", async (t) => {
    const ns = `batch${process.pid % 10000}`;
    for (const verb of ['enable', 'disable']) {
      // --force: disable of a namespace the store does not know plans the removal anyway.
      const force = verb === 'disable' ? ['--force'] : [];
      const a = await orama('namespace', verb, 'webrtc', '--namespace', ns, '--plan', '--json', ...force);
      const b = await orama('namespace', verb, 'webrtc', '--namespace', ns, '--plan', '--json', '--no-batch', ...force);
      // enable has everything to add; disable of a namespace never enabled may find nothing to remove
      if (verb === 'enable') t.equal(a.code, 2, `enable plans changes: ${a.out.slice(-1500)}`);
      else t.not(a.code, 1, `disable plans: ${a.out.slice(-1500)}`);
      t.equal(b.code, a.code, 'same exit code');
      t.same(outcome(b.out), outcome(a.out), `${verb}: same results per host and task, same plan`);
    }
  });

  await t.test('bench playbook: fresh plan, first apply, no-op apply, plan after', async (t) => {
    const site = join(bench, 'site.yml');
    await compare(t, 'plan', site);
    const first = await cli(['apply', site, '-i', inv]);
    t.equal(first.code, 0, first.out.slice(-1500));
    t.ok(recapChanged(first.out) > 0, 'the first apply changed the nodes');
    const noop = await compare(t, 'apply', site);
    t.equal(changedOf(noop.out), 0, 'nothing changed');
    await compare(t, 'plan', site);
  });
});
