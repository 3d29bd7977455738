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
`);
  t.same((play.tasks as ModuleTask[]).map((x) => x.module), ['file', 'copy', 'lineinfile', 'blockinfile', 'user', 'group', 'systemd', 'systemd', 'command']);
  t.same((play.tasks[8] as ModuleTask).args, { cmd: 'true' }, 'free-form command as in Ansible');
  t.same(play.vars, { port: 8089, name: 'web' }, "vars_files, then the play's vars on top");
});

t.test('what is refused says what to write', async (t) => {
  t.throws(() => load('- hosts: all\n  tasks:\n    - community.general.ufw: { rule: allow, port: "22" }\n'), /community\.general\.ufw.*write `ufw: \{ set: NAME, rules:/);
  t.throws(() => load('- hosts: all\n  tasks:\n    - ansible.builtin.nope: {}\n'), /unknown module or keyword "ansible\.builtin\.nope".*also as ansible\.builtin\.NAME/);
  t.throws(() => load('- hosts: all\n  vars_files: [missing.yml]\n  tasks: []\n'), /vars_files: missing\.yml not found/);
  t.throws(() => load('- hosts: all\n  tasks: []\n  handlers:\n    - block: [{ debug: { msg: x } }]\n'), /handler .* must run a module \(a block cannot be a handler\)/);
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
