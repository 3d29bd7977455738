// The plan as an operator reads it: one line per resource and host with only what changes (and
// how many managed attributes do not), and `--json`'s plan event with its format version and
// Terraform's complete/applyable flags.
import t from 'tap';
import { Reporter, describeChange, groupChanges, PLAN_FORMAT_VERSION, type PlannedChange } from '../../src/provision/report.ts';
import { Redactor } from '../../src/provision/secret.ts';
import { planContent } from '../../src/provision/modules/copy.ts';
import { planSystemd } from '../../src/provision/modules/systemd.ts';
import { sha256 } from '../../src/provision/modules/files.ts';

const capture = (json: boolean) => {
  let out = '';
  const r = new Reporter(new Redactor(), { json, out: { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream });
  return { r, text: () => out };
};
const pc = (host: string, action: PlannedChange['change']['action'], resource: string, detail?: string, unchanged?: number): PlannedChange => ({ host, task: 't', place: 'p.yml:1', change: { action, resource, detail, unchanged } });

t.test('unchanged attributes are counted, not shown', async (t) => {
  const bytes = Buffer.from('x\n');
  const p = planContent({ dest: '/etc/x', mode: '0640', owner: 'root', group: 'root', _bytes: bytes }, { exists: true, type: 'file', mode: '0644', owner: 'root', group: 'root', sha256: sha256(bytes) });
  t.same(p.changes.map((c) => [c.action, c.resource, c.detail, c.unchanged]), [['~', 'file /etc/x', 'mode 0644 → 0640', 3]], 'content, owner, group unchanged');
  t.equal(describeChange(p.changes[0]), '  (mode 0644 → 0640; 3 unchanged attributes hidden)');
  const u = planSystemd({ name: 'a.service', enabled: true, state: 'started' }, { LoadState: 'loaded', ActiveState: 'inactive', UnitFileState: 'enabled' });
  t.same(u.changes.map((c) => [c.detail, c.unchanged]), [['state: inactive → started', 1]], 'enabled already: one unchanged');
});

t.test('the summary shows each resource once per host', async (t) => {
  const g = groupChanges([
    pc('n1', '~', 'systemd unit a.service', 'enabled: no → enabled'),
    pc('n1', '~', 'systemd unit a.service', 'state: inactive → started', 1),
    pc('n2', '~', 'systemd unit a.service', 'enabled: no → enabled'),
    pc('n1', '+', 'file /etc/x', 'mode 0640'),
    pc('n1', '~', 'file /etc/x', 'known after apply: an earlier task of this plan creates it'),
    pc('n1', '~', 'file /etc/x', 'known after apply: an earlier task of this plan creates it'),
    pc('n1', '-', 'file /etc/old'),
  ]);
  t.same(g.map((c) => [c.host, c.change.action, c.change.resource, c.change.detail]), [
    ['n1', '~', 'systemd unit a.service', 'enabled: no → enabled; state: inactive → started'],
    ['n2', '~', 'systemd unit a.service', 'enabled: no → enabled'],
    ['n1', '+', 'file /etc/x', 'mode 0640; known after apply: an earlier task of this plan creates it'],
    ['n1', '-', 'file /etc/old', undefined],
  ]);
  const { r, text } = capture(false);
  r.plan([pc('n1', '~', 'systemd unit a.service', 'enabled: no → enabled'), pc('n1', '~', 'systemd unit a.service', 'state: inactive → started', 1), pc('n1', '+', 'file /etc/x')]);
  t.match(text(), /n1: 1 to add, 1 to change, 0 to destroy\n  ~ systemd unit a\.service  \(enabled: no → enabled; state: inactive → started; 1 unchanged attribute hidden\)\n  \+ file \/etc\/x\n/);
  t.match(text(), /Plan: 1 to add, 1 to change, 0 to destroy\./, 'the totals count resources');
});

t.test('plan --json: format version, complete, applyable', async (t) => {
  const event = (changes: PlannedChange[], incomplete: string[]) => {
    const { r, text } = capture(true);
    r.plan(changes, incomplete);
    return JSON.parse(text().trim().split('\n').pop()!);
  };
  const full = event([pc('n1', '+', 'file /etc/x')], []);
  t.match(full, { event: 'plan', format_version: PLAN_FORMAT_VERSION, complete: true, applyable: true, add: 1, incomplete: [] });
  t.match(full.changes[0], { host: 'n1', task: 't', action: '+', resource: 'file /etc/x' });
  t.match(event([], []), { complete: true, applyable: false }, 'nothing to do: not applyable');
  t.match(event([pc('n1', '+', 'file /etc/x')], ['n2']), { complete: false, applyable: false, incomplete: ['n2'] }, 'a host failed or was unreachable: neither');
});
