// Tasks written as current Ansible writes them: fully qualified module names
// (ansible.builtin.*, ansible.legacy.*), Ansible's aliases (service, systemd_service), the new
// modules (lineinfile, blockinfile, user, group), vars_files — and a clear refusal where an
// Ansible module's arguments differ from ours (community.general.ufw).
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlaybookLoader, type ModuleTask } from '../../src/provision/playbook.ts';

const dir = mkdtempSync(join(tmpdir(), 'ansible-names-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const load = (yaml: string) => {
  const file = join(dir, `p-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(file, yaml);
  return PlaybookLoader.load(file);
};

t.test('FQCN and aliases resolve to our modules', async (t) => {
  writeFileSync(join(dir, 'vars.yml'), 'port: 8089\n');
  const [play] = load(`- hosts: all
  vars_files: [vars.yml]
  vars: { name: web }
  tasks:
    - ansible.builtin.file: { path: /etc/x, state: directory }
    - ansible.legacy.copy: { dest: /etc/x/a, content: "a" }
    - ansible.builtin.lineinfile: { path: /etc/x/a, line: "b=1" }
    - ansible.builtin.blockinfile: { path: /etc/x/a, block: "c=1" }
    - ansible.builtin.user: { name: web, system: true }
    - ansible.builtin.group: { name: web, system: true }
    - service: { name: ssh.service, state: started }
    - ansible.builtin.systemd_service: { name: ssh.service, enabled: true }
    - ansible.builtin.command: "true"
    - ansible.builtin.package: { name: curl, state: present }
`);
  t.same((play.tasks as ModuleTask[]).map((x) => x.module), ['file', 'copy', 'lineinfile', 'blockinfile', 'user', 'group', 'systemd', 'systemd', 'command', 'apt']);
  t.same((play.tasks[8] as ModuleTask).args, { cmd: 'true' }, 'free-form command as in Ansible');
  t.same(play.vars, { port: 8089, name: 'web' }, "vars_files, then the play's vars on top");
});

t.test('what is refused says what to write', async (t) => {
  t.throws(() => load('- hosts: all\n  tasks:\n    - community.general.ufw: { rule: allow, port: "22" }\n'), /community\.general\.ufw.*write `ufw: \{ set: NAME, rules:/);
  t.throws(() => load('- hosts: all\n  tasks:\n    - ansible.builtin.get_url: { url: "http://x/y", dest: /tmp/y }\n'), /module "ansible\.builtin\.get_url" is not supported; put the file in the role's files\/ and use `copy: \{ src: NAME/);
  t.throws(() => load('- hosts: all\n  tasks:\n    - unarchive: { src: a.tgz, dest: /opt }\n'), /module "unarchive" is not supported; use `copy` for the archive and `command: \{ cmd: "tar -xf/);
  t.throws(() => load('- hosts: all\n  tasks:\n    - ansible.builtin.nope: {}\n'), /unknown module or keyword "ansible\.builtin\.nope".*also as ansible\.builtin\.NAME/);
  t.throws(() => load('- hosts: all\n  vars_files: [missing.yml]\n  tasks: []\n'), /vars_files: missing\.yml not found/);
  t.throws(() => load('- hosts: all\n  tasks: []\n  handlers:\n    - block: [{ debug: { msg: x } }]\n'), /handler .* must run a module \(a block cannot be a handler\)/);
});

t.test('Ansible keywords we do not have are errors that say what to write', async (t) => {
  const task = (yaml: string) => `- hosts: all\n  tasks:\n    - name: t\n${yaml}`;
  t.throws(() => load(task('      command: "echo {{ item }}"\n      with_items: [a, b]\n')), /task keyword "with_items" is not supported: use `loop:` \(with_items flattens one level: `loop: "\{\{ x \| flatten\(levels=1\) \}\}"`/);
  t.throws(() => load(task('      command: "sleep 100"\n      async: 300\n      poll: 0\n')), /task keyword "async" is not supported: tasks run to completion here; run long work as a systemd unit/);
  t.throws(() => load(task('      command: "env"\n      environment: { A: "1" }\n')), /task keyword "environment" is not supported: set the variables in the command/);
  t.throws(() => load(task('      command: "id"\n      become_user: postgres\n')), /task keyword "become_user" is not supported: .*runuser -u USER/);
  t.throws(() => load(task('      local_action: { module: command, cmd: "true" }\n')), /task keyword "local_action" is not supported: use `delegate_to: localhost`/);
  t.throws(() => load('- hosts: all\n  remote_user: deploy\n  tasks: []\n'), /play keyword "remote_user" is not supported: set `ansible_user`/);
  t.throws(() => load('- hosts: all\n  strategy: free\n  tasks: []\n'), /play keyword "strategy" is not supported: plays run with Ansible's linear strategy/);
  t.throws(() => load('- hosts: all\n  vars_prompt: [{ name: pw }]\n  tasks: []\n'), /play keyword "vars_prompt" is not supported: pass the value with `-e name=value`/);
  const e = (() => { try { load(task('      command: "x"\n      with_items: [a]\n')); } catch (err) { return (err as { describe(): string }).describe(); } })();
  t.match(e, /\.yml:5:7, task "t", key "with_items"/, 'the error points at the keyword: file, line, column');
});

t.test("args: beside the module, and Ansible's flatten", async (t) => {
  const [play] = load('- hosts: all\n  tasks:\n    - command: "make install"\n      args: { chdir: /src, creates: /usr/local/bin/x }\n');
  t.same((play.tasks[0] as ModuleTask).args, { chdir: '/src', creates: '/usr/local/bin/x', cmd: 'make install' });
  const { renderString } = await import('../../src/provision/template.ts');
  t.same(renderString('{{ [[1, [2]], 3] | flatten }}', {}), [1, 2, 3]);
  t.same(renderString('{{ [[1, [2]], 3] | flatten(levels=1) }}', {}), [1, [2], 3]);
});

t.test('an Ansible inventory connects as written: ansible_host, ansible_port, ansible_user, …', async (t) => {
  const { Inventory } = await import('../../src/provision/inventory.ts');
  const file = join(dir, 'hosts.yml');
  writeFileSync(file, `all:
  vars: { ansible_user: deploy, ansible_python_interpreter: /usr/bin/python3 }
  hosts:
    web1: { ansible_host: 203.0.113.21, ansible_port: "2222", ansible_ssh_private_key_file: ~/.ssh/id_ed25519, ansible_become: yes }
    web2: { address: 203.0.113.22, ansible_host: 198.51.100.1, user: root }
    ctl: { ansible_connection: local }
`);
  const inv = Inventory.load(file);
  t.match(inv.hosts.get('web1'), { address: '203.0.113.21', port: 2222, user: 'deploy', key: '~/.ssh/id_ed25519', become: true, connection: 'ssh' }, 'host and group ansible_* variables');
  t.match(inv.hosts.get('web2'), { address: '203.0.113.22', user: 'root' }, 'our own keys win over ansible_*');
  t.equal(inv.hosts.get('ctl')!.connection, 'local');
});

t.test('a port that is no port is refused when the inventory is loaded, naming the file, line, host and key', async (t) => {
  const { Inventory } = await import('../../src/provision/inventory.ts');
  const { SshTransport } = await import('../../src/provision/transport/ssh.ts');
  const { described } = await import('../helpers/described.ts');
  const { mkdirSync } = await import('node:fs');
  const d = join(dir, 'ports');
  mkdirSync(join(d, 'group_vars'), { recursive: true });
  mkdirSync(join(d, 'host_vars'), { recursive: true });
  const file = join(d, 'hosts.yml');
  const load = (text: string) => {
    writeFileSync(file, text);
    return described(() => Inventory.load(file));
  };
  const must = 'must be a port number, an integer from 1 to 65535';
  t.equal(load('all:\n  hosts:\n    n1: { ansible_host: 192.0.2.1, ansible_port: "abc" }\n'), `${file}:3:36, key "ansible_port": inventory host "n1": "ansible_port" ${must}, got "abc"`);
  t.equal(load('all:\n  vars:\n    ansible_port: 99999\n  hosts:\n    n1: {}\n'), `${file}:3:5, key "ansible_port": inventory host "n1": "ansible_port" ${must}, got 99999`, 'from a group: the group\'s line');
  t.equal(load('all:\n  vars: { ansible_port: 0 }\n  hosts:\n    n1: { ansible_port: 2222 }\n').slice(0, 10), 'no error', 'the host\'s own value wins, as in the merge');
  t.equal(load('all:\n  hosts:\n    n1: { port: 22, ansible_port: 2.5 }\n'), 'no error', 'our own port wins over ansible_port');
  t.match(load('all:\n  hosts:\n    n1: { ansible_port: "{{ p }}" }\n'), /"ansible_port" must be a port number, an integer from 1 to 65535; connection variables are not templated, got "\{\{ p \}\}"/);
  writeFileSync(join(d, 'group_vars', 'web.yml'), 'x: 1\nansible_port: -1\n');
  t.equal(load('all:\n  hosts:\n    n1: {}\n  children:\n    web:\n      hosts: { n1: {} }\n'), `${join(d, 'group_vars', 'web.yml')}:2:1, key "ansible_port": inventory host "n1": "ansible_port" ${must}, got -1`, 'from group_vars/: that file');
  writeFileSync(join(d, 'group_vars', 'web.yml'), 'ansible_port: "2222"\n');
  writeFileSync(join(d, 'host_vars', 'n1.yml'), 'port: 70000\n');
  t.equal(load('all:\n  hosts:\n    n1: {}\n  children:\n    web:\n      hosts: { n1: {} }\n'), `${join(d, 'host_vars', 'n1.yml')}:1:1, key "port": inventory host "n1": "port" ${must}, got 70000`, 'our own port from host_vars/ too');
  writeFileSync(join(d, 'host_vars', 'n1.yml'), 'x: 1\n');
  load('all:\n  hosts:\n    n1: {}\n  children:\n    web:\n      hosts: { n1: {} }\n');
  t.equal(Inventory.load(file).hosts.get('n1')!.port, 2222, 'digits as a string are a port, as in Ansible');
  // A Host made elsewhere is checked again before ssh2 sees it (ssh2 takes NaN for port 22).
  const host = { name: 'n1', address: '127.0.0.2', port: NaN, user: 'root', become: false, connection: 'ssh' as const, vars: {}, groups: [] };
  await t.rejects(new SshTransport(host).connect(), /ssh root@127\.0\.0\.2:NaN: the port is not a port number/);
});

t.test('include_tasks / import_tasks carry their when; import_role / include_role bring the role in', async (t) => {
  const { mkdirSync } = await import('node:fs');
  for (const d of ['roles/web/tasks', 'roles/web/defaults', 'roles/web/handlers']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'roles/web/tasks/main.yml'), '- debug: { msg: "web main {{ web_port }}" }\n');
  writeFileSync(join(dir, 'roles/web/tasks/extra.yml'), '- debug: { msg: extra }\n  notify: restart web\n');
  writeFileSync(join(dir, 'roles/web/defaults/main.yml'), 'web_port: 8080\n');
  writeFileSync(join(dir, 'roles/web/handlers/main.yml'), '- name: restart web\n  debug: { msg: restarted }\n');
  writeFileSync(join(dir, 'more.yml'), '- debug: { msg: one }\n- debug: { msg: two }\n');
  const [play] = load(`- hosts: all
  tasks:
    - ansible.builtin.include_tasks: more.yml
      when: want_more
    - import_tasks: more.yml
    - ansible.builtin.import_role: { name: web, tasks_from: extra }
    - include_role: { name: web }
      vars: { web_port: 8089 }
`);
  const [wrapped, one, two, extra, main] = play.tasks;
  t.equal(wrapped.kind, 'block', 'an inclusion with a when becomes a block carrying it');
  t.equal(wrapped.when, 'want_more');
  t.same(wrapped.kind === 'block' && wrapped.block.map((x) => x.kind === 'module' && x.args.msg), ['one', 'two']);
  t.same([one, two].map((x) => x.kind === 'module' && x.args.msg), ['one', 'two'], 'without a when the tasks come in as they are');
  t.equal(extra.kind === 'module' && extra.args.msg, 'extra', "tasks_from picks the role's tasks file");
  t.same(main.vars, { web_port: 8089 }, "the inclusion's vars reach the role's tasks");
  t.ok(play.roles.some((r) => r.name === 'web' && r.defaults.web_port === 8080), "the role's defaults join the play");
  t.ok(play.handlers.some((h) => h.name === 'restart web'), 'and so do its handlers');
  t.throws(() => load('- hosts: all\n  tasks:\n    - include_tasks: more.yml\n      loop: [1, 2]\n'), /include_tasks with a loop is not supported/);
});

t.test('facts under Ansible\'s names: ansible_facts[...] and ansible_* aliases', async (t) => {
  const { parseFacts, ansibleFactVars } = await import('../../src/provision/facts.ts');
  const out = [
    'node1',
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian',
    'yes',
    'lo 127.0.0.1/8\neth0 10.77.0.11/24\nwg0 10.0.0.1/24',
    'tcp 0.0.0.0:22',
    'node1.example.org\nx86_64\n2\n24576000\ndefault via 10.77.0.1 dev eth0 onlink',
  ].join('\n---\n');
  const f = parseFacts(out);
  t.match(f.ansible, {
    hostname: 'node1', fqdn: 'node1.example.org', os_family: 'Debian', distribution: 'Debian', distribution_release: 'bookworm',
    distribution_major_version: '12', architecture: 'x86_64', processor_vcpus: 2, memtotal_mb: 24000, service_mgr: 'systemd',
    all_ipv4_addresses: ['10.77.0.11', '10.0.0.1'], default_ipv4: { interface: 'eth0', address: '10.77.0.11', gateway: '10.77.0.1' },
    interfaces: ['lo', 'eth0', 'wg0'],
  });
  const vars = ansibleFactVars(f);
  t.equal((vars.ansible_facts as { os_family: string }).os_family, 'Debian', "ansible_facts['os_family'] is what a role's when tests");
  t.equal(vars.ansible_os_family, 'Debian');
  t.equal(vars.ansible_distribution_release, 'bookworm');
});

t.test('a role\'s handlers see the role\'s parameters', async (t) => {
  const { mkdirSync } = await import('node:fs');
  for (const d of ['roles/app/tasks', 'roles/app/defaults', 'roles/app/handlers']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'roles/app/tasks/main.yml'), '- debug: { msg: "{{ listen_port }}" }\n  notify: restart app\n');
  writeFileSync(join(dir, 'roles/app/defaults/main.yml'), 'listen_port: 8080\n');
  writeFileSync(join(dir, 'roles/app/handlers/main.yml'), '- name: restart app\n  debug: { msg: "restart on {{ listen_port }}" }\n');
  const [play] = load('- hosts: all\n  roles: [{ role: app, vars: { listen_port: 8089 } }]\n');
  t.same(play.tasks[0].vars, { listen_port: 8089 });
  t.same(play.handlers[0].vars, { listen_port: 8089 }, 'the handler renders 8089, not the default 8080');
});
