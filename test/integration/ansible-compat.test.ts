// Roles in plain Ansible syntax (test/fixtures/ansible/, nothing orama-specific) applied by
// orama-provision on the real nodes through an Ansible inventory; then ansible-playbook itself,
// in --check --diff mode on the same nodes, must find nothing to change: both tools mean the same
// state by the same roles. Also: a no-op re-apply changes nothing, and the handler saw the role's
// parameter.
import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { sshExec } from '../../src/cluster/cluster.ts';
import { clusterSuite } from '../helpers/cluster-suite.ts';
import { provision as cli, root } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const site = join(root, 'test', 'fixtures', 'ansible', 'site.yml');
const sh = async (node: string, cmd: string) => (await sshExec(node, cmd)).stdout.trim();
const recap = (out: string) => [...out.matchAll(/^(\S+)\s*: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)].map((m) => ({ host: m[1], ok: +m[2], changed: +m[3], unreachable: +m[4], failed: +m[5] }));

t.test('plain Ansible roles run unchanged, and Ansible agrees with the result', async (t) => {
  const { cluster, base } = await clusterSuite();
  t.equal(base.code, 0, 'node-base applied');
  const cleanup = 'systemctl disable --now compat-web.service 2>/dev/null; rm -f /etc/systemd/system/compat-web.service; systemctl daemon-reload; rm -rf /opt/ansible-compat; userdel compat 2>/dev/null; groupdel compat 2>/dev/null; true';
  const reset = () => Promise.all(cluster.hosts.map((h) => sshExec(h.name, cleanup)));
  await reset();
  t.teardown(reset);

  // An Ansible inventory, as an Ansible user has it (ansible_* variables); known_hosts is ours.
  const hosts: Record<string, unknown> = {};
  for (const h of cluster.hosts) {
    hosts[h.name] = {
      ansible_host: h.address, ansible_user: 'root', ansible_ssh_private_key_file: h.key, ansible_python_interpreter: '/usr/bin/python3',
      ansible_ssh_common_args: `-o UserKnownHostsFile=${h.knownHosts} -o StrictHostKeyChecking=yes`, known_hosts: h.knownHosts,
    };
  }
  const inv = join(tempDir(t, 'ansible-inv-'), 'hosts.yml');
  writeFileSync(inv, YAML.stringify({ all: { children: { cluster: { hosts } } } }));

  const fresh = await cli(['plan', site, '-i', inv]);
  t.equal(fresh.code, 2, `a plan on fresh nodes lists the changes, fails nothing: ${fresh.out.slice(-2000)}`);
  t.match(fresh.out, /\+ file \/opt\/ansible-compat\/app\.ini  \(mode 0640; known after apply: an earlier task of this plan creates it\)/, 'lineinfile on a file an earlier task creates: known after apply, one line for the resource');

  const first = await cli(['apply', site, '-i', inv]);
  t.equal(first.code, 0, first.out.slice(-3000));
  t.ok(recap(first.out).every((r) => r.changed > 0 && r.failed === 0), 'every host changed, none failed');

  await t.test('what the roles meant is on the nodes', async (t) => {
    t.equal(await sh('node1', 'curl -s http://127.0.0.1:8089/'), 'served by node1 on 8089', 'the unit serves on the role parameter\'s port');
    t.equal(await sh('node2', 'cat /opt/ansible-compat/handler-port'), '8089', "the handler rendered the role's parameter, not the default 8080");
    t.equal(await sh('node1', 'id -nu compat; id -ng compat; getent passwd compat | cut -d: -f5-7'), 'compat\ncompat\ncompat service:/nonexistent:/usr/sbin/nologin');
    t.equal(await sh('node3', 'cat /opt/ansible-compat/app.ini'), '[main]\ndebug = false\n# BEGIN ANSIBLE MANAGED BLOCK\n[limits]\nmax_peers = 16\n# END ANSIBLE MANAGED BLOCK', 'lineinfile, blockinfile, replace');
    t.match(await sh('node1', 'cat /opt/ansible-compat/facts.txt'), /^os_family=Debian\ndistribution=Debian\nrelease=bookworm\nmajor=12\nhostname=node1\narchitecture=x86_64\nservice_mgr=systemd\nvcpus=\d+\naddresses=.*10\.77\.0\.11/, "ansible_facts['os_family'] == 'Debian' held, facts under Ansible's names");
    t.equal(await sh('node1', 'test -e /opt/ansible-compat/not-debian && echo yes || echo no'), 'no', 'the false condition skipped its task');
    t.equal(await sh('node2', 'cd /opt/ansible-compat && cat debian-tasks marker-second marker-included'), 'included for Debian\nsecond\nincluded', 'include_tasks with when, import_role tasks_from, include_role with vars');
  });

  await t.test('a second apply changes nothing', async (t) => {
    const again = await cli(['apply', site, '-i', inv]);
    t.equal(again.code, 0, again.out.slice(-2000));
    t.same(recap(again.out).map((r) => r.changed), [0, 0, 0], again.out.slice(-2000));
  });

  await t.test('ansible-playbook --check --diff on the same nodes finds nothing to change', async (t) => {
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile('ansible-playbook', ['-i', inv, site, '--check', '--diff'], { cwd: root, env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_PIPELINING: 'True', ANSIBLE_RETRY_FILES_ENABLED: 'False', ANSIBLE_HOST_KEY_CHECKING: 'True' }, maxBuffer: 32 << 20, timeout: 600_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }),
      ),
    );
    t.equal(r.code, 0, r.out.slice(-3000));
    const rc = recap(r.out);
    t.equal(rc.length, 3, 'a recap line per node');
    t.same(rc.map((x) => x.changed), [0, 0, 0], `Ansible would change nothing:\n${r.out.slice(-4000)}`);
  });
});
