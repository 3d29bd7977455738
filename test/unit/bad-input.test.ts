// BAD INPUT, table-driven, without the test cluster: one named test per malformed input, grouped
// by where it enters — playbooks and command line of `orama-provision plan|apply` (PB, ARG),
// inventories (INV), the `orama` command line and namespace names (CLI), the gateway's REST
// bodies, queries and headers (REST), JWTs (JWT), signaling frames (SIG). Every row asserts both
//   (a) a clear error that names what was wrong (file:line, key, host or value), exit code ≠ 0 or
//       HTTP 4xx (never 500), no stack trace and no secret in what the user sees, and
//   (b) that nothing changed: the row's temp directory (sha256 of every file) and state DB (sha256
//       of every table) for the CLIs; the gateway store's tables; the SFU's rooms and the connection.
// Rows that show a bug assert the CORRECT behaviour; their assertions carry tap's `todo` (the bug),
// so they still run and report "not ok … # TODO" without failing the file.
// The table for people: docs/robustness.md (BAD_INPUT_REPORT=file.ndjson writes one JSON line per
// row — id, area, input, what the user saw — to refresh it).
// CLI rows use hosts on 127.0.0.2 at ports where nothing listens (never 127.0.0.1/localhost: that
// is the local connection), a temp SQLite state (ORAMA_STATE), a temp inventory (ORAMA_INVENTORY)
// and a temp HOME; gateway rows use fastify inject, plus a few real WebSockets on 127.0.0.1.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import type { InjectOptions } from 'fastify';
import { WebSocket } from 'ws';
import { orama, provision, root, type Run } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { gatewayFixture } from '../helpers/gateway-fixture.ts';
import { startStandinSfu } from '../helpers/standin-sfu.ts';
import { generateJwtKey, mintToken } from '../../src/webrtc/tokens.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { Secret } from '../../src/secret/secret.ts';
import { resolveSfuConfig } from '../../src/sfu/config.ts';
import { Sfu } from '../../src/sfu/sfu.ts';
import { Session } from '../../src/sfu/session.ts';
import type { EngineConnection, MediaEngine } from '../../src/sfu/engine.ts';
import type { ServerMessage } from '../../src/webrtc/protocol.ts';

// ---------------------------------------------------------------------------------------------
// The row shape and the assertions every row gets

interface Outcome {
  /** What the user sees: CLI stdout+stderr, the HTTP body, the SFU's error frames, a close code. */
  text: string;
  /** Exit code of a CLI (null: killed). */
  exit?: number | null;
  /** HTTP status. */
  status?: number;
  /** Fingerprints of everything the input could have changed, before and after. */
  before: unknown;
  after: unknown;
  /** Values that must never appear in `text` (nor in `logs`). */
  secrets: string[];
  /** Server-side log lines written during the row (gateway). */
  logs?: string;
}

interface Row {
  id: string;
  area: string;
  /** The malformed input, for people. */
  input: string;
  run(t: Test): Promise<Outcome>;
  /** What the error must say. */
  expect: RegExp;
  /** Exact HTTP status, when one is expected (every HTTP row is checked to be a 4xx). */
  status?: number;
  /** How "nothing changed" is proven (docs/robustness.md). */
  proof: string;
  /** A known bug: the row asserts the correct behaviour and fails until it is fixed. */
  todo?: string;
}

const rows: Row[] = [];
const STACK = /\n\s+at .+:\d+:\d+\)?\s*$|file:\/\/\/|^\s*\^\s*$/m;

// ---------------------------------------------------------------------------------------------
// Fingerprints

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file under dir: relative path → mode and sha256 (directories too, so a new one shows). */
function treeFingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (e.isDirectory()) {
        out[`${rel}/`] = 'dir';
        walk(p);
      } else out[rel] = e.isFile() ? `${(statSync(p).mode & 0o7777).toString(8)} ${sha(readFileSync(p))}` : 'other';
    }
  };
  walk(dir);
  return out;
}

/** Every table of an open database: row count and sha256 of its rows (never the rows: they hold secrets). */
function tableHashes(db: Database.Database): Record<string, string> {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
  return Object.fromEntries(tables.map(({ name }) => {
    const data = db.prepare(`SELECT * FROM "${name}"`).raw().all();
    return [name, `${data.length} rows ${sha(JSON.stringify(data))}`];
  }));
}

/** A state file's tables, read from a copy (a read-only open would leave -shm/-wal files behind). */
function dbFingerprint(file: string): Record<string, string> | null {
  if (!existsSync(file)) return null;
  const scratch = mkdtempSync(join(tmpdir(), 'bad-input-db-'));
  try {
    for (const suffix of ['', '-wal']) if (existsSync(file + suffix)) copyFileSync(file + suffix, join(scratch, `db${suffix}`));
    const db = new Database(join(scratch, 'db'));
    try {
      return tableHashes(db);
    } finally {
      db.close();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A CLI run in another working directory (where a bug writing relative paths would show). */
function runIn(cwd: string, script: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<Run & { killed: boolean }> {
  return new Promise((resolve) => {
    execFile('node', [join(root, 'bin', script), ...args], { cwd, env: { ...process.env, ...env }, maxBuffer: 32 << 20, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const killed = Boolean(err && (err as { killed?: boolean }).killed);
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr + (killed ? `\n(killed after ${timeoutMs} ms)` : ''), stdout, killed });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// PB / ARG / INV: `orama-provision plan|apply` on temp files

const INV_SECRET = `inv-secret-${randomBytes(12).toString('hex')}`;
const EXTRA_SECRET = `extra-secret-${randomBytes(12).toString('hex')}`;
/** Two hosts on 127.0.0.2 at ports where nothing listens, and a !secret variable. */
const INVENTORY = `all:
  vars:
    vault_pass: !secret ${INV_SECRET}
  hosts:
    node1: { address: 127.0.0.2, port: 1 }
    node2: { address: 127.0.0.2, port: 2 }
  children:
    web:
      hosts: { node1: {} }
`;
const GOOD_PLAYBOOK = '- hosts: all\n  gather_facts: false\n  tasks:\n    - name: t\n      debug: { msg: hi }\n';

/** Deterministic bytes that are no text: a file header, then a sha256 stream. */
function binary(header: string, n = 2048): Buffer {
  const out: Buffer[] = [Buffer.from(header, 'hex')];
  for (let i = 0; out.length * 32 < n; i++) out.push(createHash('sha256').update(`bad-input-${i}`).digest());
  return Buffer.concat(out).subarray(0, n);
}

interface FilesRow {
  id: string;
  input: string;
  /** Files of the row's temp dir; inv.yml and pb.yml default to good ones. */
  files?: Record<string, string | Buffer>;
  /** Arguments; DIR is replaced by the temp dir. Default: plan DIR/pb.yml -i DIR/inv.yml */
  args?: string[];
  expect: RegExp;
  todo?: string;
  /** Kill the CLI after this long (the row then fails). */
  within?: number;
}

function provisionRow(area: 'PB' | 'ARG' | 'INV', r: FilesRow) {
  const label = { PB: 'playbook', ARG: 'orama-provision command line', INV: 'inventory' }[area];
  rows.push({
    id: r.id, area: label, input: r.input, expect: r.expect, todo: r.todo,
    proof: 'temp dir (playbook, inventory, HOME): sha256 of every file, before = after',
    async run(t) {
      const dir = tempDir(t, `bad-input-${r.id}-`);
      mkdirSync(join(dir, 'home'));
      const files = { 'inv.yml': INVENTORY, 'pb.yml': GOOD_PLAYBOOK, ...r.files };
      for (const [name, content] of Object.entries(files)) {
        mkdirSync(join(dir, name, '..'), { recursive: true });
        writeFileSync(join(dir, name), content);
      }
      const args = (r.args ?? ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml']).map((a) => a.replaceAll('DIR', dir));
      const env = { HOME: join(dir, 'home') };
      const before = treeFingerprint(dir);
      const res: Run & { killed?: boolean } = r.within ? await runIn(dir, 'orama-provision.js', args, env, r.within) : await provision(args, env);
      return { text: res.out, exit: res.killed ? null : res.code, before, after: treeFingerprint(dir), secrets: [INV_SECRET, EXTRA_SECRET] };
    },
  });
}
const pb = (r: FilesRow) => provisionRow('PB', r);
const arg = (r: FilesRow) => provisionRow('ARG', r);
const inv = (r: FilesRow) => provisionRow('INV', r);
const play = (body: string) => ({ 'pb.yml': body });
const inventory = (body: string) => ({ 'inv.yml': body });

// -- playbooks: YAML syntax
pb({ id: 'PB-01', input: 'YAML syntax error: a flow mapping `{ msg: hi` never closed', files: play('- hosts: all\n  tasks:\n    - debug: { msg: hi\n'), expect: /pb\.yml:4:1: invalid YAML: Flow map in block collection must be sufficiently indented and end with a \}/ });
pb({ id: 'PB-02', input: 'YAML syntax error: a module key indented deeper than its task\'s `name`', files: play('- hosts: all\n  tasks:\n  - name: x\n     debug: {}\n'), expect: /pb\.yml:3:\d+: invalid YAML: Nested mappings are not allowed in compact mappings/ });
pb({ id: 'PB-03', input: 'the same key twice in a play (`a: 1`, `a: 2`)', files: play('- hosts: all\n  a: 1\n  a: 2\n'), expect: /pb\.yml:3:3: invalid YAML: Map keys must be unique/ });
// -- wrong types, unknown keys and keywords
pb({ id: 'PB-04', input: 'a mapping instead of a list of plays', files: play('hosts: all\ntasks: []\n'), expect: /pb\.yml:1:1: a playbook is a list of plays/ });
pb({ id: 'PB-05', input: '`hosts:` is a list, not a pattern', files: play('- hosts: [a, b]\n  tasks: []\n'), expect: /pb\.yml:1:10, key "hosts": play: "hosts" must be string/ });
pb({ id: 'PB-06', input: '`gather_facts: "maybe"` (a string, not a boolean)', files: play('- hosts: all\n  gather_facts: "maybe"\n'), expect: /pb\.yml:2:3, key "gather_facts": play: "gather_facts" must be boolean/ });
pb({ id: 'PB-07', input: 'unknown play key `colour:`', files: play('- hosts: all\n  colour: blue\n'), expect: /pb\.yml:2:3, key "colour": play: unknown key "colour"/ });
pb({ id: 'PB-08', input: 'Ansible play keyword this engine does not have (`strategy: free`)', files: play('- hosts: all\n  strategy: free\n  tasks: []\n'), expect: /pb\.yml:2:3, key "strategy": play keyword "strategy" is not supported: plays run with Ansible's linear strategy/ });
pb({ id: 'PB-09', input: 'misspelt module `shelll:`', files: play('- hosts: all\n  tasks:\n    - name: t\n      shelll: ls\n'), expect: /pb\.yml:4:7, task "t", key "shelll": unknown module or keyword "shelll" \(modules: apt, / });
pb({ id: 'PB-10', input: 'task keyword `with_items:` (not supported)', files: play('- hosts: all\n  tasks:\n    - name: t\n      with_items: [1]\n      debug: { msg: x }\n'), expect: /pb\.yml:4:7, task "t", key "with_items": task keyword "with_items" is not supported: use `loop:`/ });
pb({ id: 'PB-11', input: 'two modules in one task (`debug` and `command`)', files: play('- hosts: all\n  tasks:\n    - name: t\n      debug: { msg: a }\n      command: ls\n'), expect: /pb\.yml:5:7, task "t": a task needs exactly one module, found more than one module \(debug, command\)/ });
pb({ id: 'PB-12', input: 'a task that is a string, not a mapping', files: play('- hosts: all\n  tasks:\n    - "just a string"\n'), expect: /pb\.yml:3:5: a task must be a mapping/ });
pb({ id: 'PB-13', input: 'unknown module argument (`copy: { bogus: 1 }`)', files: play('- hosts: all\n  tasks:\n    - name: t\n      copy: { dest: /tmp/x, content: y, bogus: 1 }\n'), expect: /pb\.yml:4:41, task "t", key "bogus": module copy arguments: unknown key "bogus"/ });
pb({ id: 'PB-14', input: 'module argument of the wrong type (`copy: { dest: 5 }`)', files: play('- hosts: all\n  tasks:\n    - name: t\n      copy: { dest: 5, content: y }\n'), expect: /pb\.yml:4:15, task "t", key "dest": module copy arguments: "dest" must be string/ });
pb({ id: 'PB-15', input: '`register: "1bad"` (not a variable name)', files: play('- hosts: all\n  tasks:\n    - name: t\n      register: "1bad"\n      debug: {}\n'), expect: /pb\.yml:4:7, task "t", key "register": task: "register" must match pattern/ });
// -- undefined variables, template syntax
pb({ id: 'PB-16', input: 'undefined variable in the play name (`{{ nope }}`)', files: play('- hosts: all\n  name: "{{ nope }}"\n  tasks: []\n'), expect: /pb\.yml:1:3: undefined variable: "nope" is undefined in "\{\{ nope \}\}"/ });
pb({ id: 'PB-17', input: 'undefined variable next to a `!secret` extra var (`-e @secret.yml`, name `{{ api_token }} {{ nope }}`)', files: { ...play('- hosts: all\n  name: "{{ api_token }} {{ nope }}"\n  tasks: []\n'), 'secret.yml': `api_token: !secret ${EXTRA_SECRET}\n` }, args: ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml', '-e', '@DIR/secret.yml'], expect: /pb\.yml:1:3: undefined variable: "nope" is undefined/ });
pb({ id: 'PB-18', input: 'template syntax error: `{{ oops ` never closed', files: play('- hosts: all\n  name: "{{ oops "\n  tasks: []\n'), expect: /pb\.yml:1:3: template error in "\{\{ oops ": expected variable end/ });
pb({ id: 'PB-19', input: 'unknown filter (`{{ 1 | nosuchfilter }}`)', files: play('- hosts: all\n  name: "{{ 1 | nosuchfilter }}"\n'), expect: /pb\.yml:1:3: template error in .*filter not found: nosuchfilter/ });
// -- references to what is not there
pb({ id: 'PB-20', input: 'a role that does not exist', files: play('- hosts: all\n  roles: [nosuchrole]\n'), expect: /pb\.yml:2:10: role "nosuchrole" not found \(looked in / });
pb({ id: 'PB-21', input: '`vars_files:` names a missing file', files: play('- hosts: all\n  vars_files: [missing.yml]\n'), expect: /pb\.yml:2:15: vars_files: missing\.yml not found/ });
pb({ id: 'PB-22', input: '`import_tasks:` of a missing file', files: play('- hosts: all\n  tasks:\n    - import_tasks: nope.yml\n'), expect: /pb\.yml:3:7: import_tasks: .*nope\.yml not found/ });
pb({ id: 'PB-23', input: '`hosts:` pattern that matches no host or group', files: play('- hosts: nosuchgroup\n  tasks: []\n'), expect: /hosts "nosuchgroup": no host or group named "nosuchgroup" in .*inv\.yml/ });
pb({
  id: 'PB-24', input: '`serial: 0`', files: play('- hosts: all\n  serial: 0\n  tasks: []\n'), expect: /pb\.yml:2:3, key "serial": serial must be a positive integer or a percentage, got 0/,
});
// -- empty, binary, missing, huge
pb({ id: 'PB-25', input: 'an empty playbook file', files: play(''), expect: /pb\.yml: a playbook is a list of plays/ });
pb({ id: 'PB-26', input: 'a binary file (ELF header + 2 KB of bytes) as the playbook', files: { 'pb.yml': binary('7f454c460201010000000000') }, expect: /pb\.yml(:\d+:\d+)?: (a playbook is a list of plays|invalid YAML)/ });
pb({ id: 'PB-27', input: 'the playbook file does not exist', args: ['plan', 'DIR/nope.yml', '-i', 'DIR/inv.yml'], expect: /nope\.yml: cannot read: ENOENT/ });
pb({ id: 'PB-28', input: 'a 5 MB playbook: one quoted play name that never closes', files: play(`- hosts: all\n  name: "${'x'.repeat(5 << 20)}\n`), expect: /pb\.yml:3:1: invalid YAML: Missing closing "quote/ });
{
  const lines = ['- hosts: all', '  gather_facts: false', '  vars:'];
  let size = 40;
  for (let i = 0; size < 5 << 20; i++) {
    const l = `    v${i}: "${'x'.repeat(40)}"`;
    lines.push(l);
    size += l.length + 1;
  }
  const colourLine = lines.length + 1;
  lines.push('  colour: blue', '');
  pb({
    id: 'PB-29', input: 'a 5 MB playbook: a vars mapping of ~95 000 keys, then an unknown play key', files: play(lines.join('\n')),
    expect: new RegExp(`pb\\.yml:${colourLine}:3, key "colour": play: unknown key "colour"`), within: 8_000,
  });
}

// -- the orama-provision command line
arg({ id: 'ARG-01', input: 'unknown verb (`orama-provision frobnicate`)', args: ['frobnicate'], expect: /orama-provision: unknown command "frobnicate"/ });
arg({ id: 'ARG-02', input: 'unknown option `--frob`', args: ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml', '--frob'], expect: /Unknown option '--frob'/ });
arg({ id: 'ARG-03', input: 'plan without `-i INVENTORY`', args: ['plan', 'DIR/pb.yml'], expect: /-i INVENTORY is required/ });
arg({ id: 'ARG-04', input: '`--forks 0`', args: ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml', '--forks', '0'], expect: /--forks must be a positive integer, got "0"/ });
arg({ id: 'ARG-05', input: '`-e \'{"a":\'` (broken JSON)', args: ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml', '-e', '{"a":'], expect: /-e: invalid JSON: / });
arg({ id: 'ARG-06', input: '`-e =3` (no key)', args: ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml', '-e', '=3'], expect: /-e "=3": expected key=value, @file\.yml or a JSON object/ });
arg({ id: 'ARG-07', input: '`-e @list.yml`, a file holding a list', files: { 'list.yml': '- a\n- b\n' }, args: ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml', '-e', '@DIR/list.yml'], expect: /list\.yml: extra vars file must be a mapping/ });
arg({
  id: 'ARG-08', input: '`-e \'k=[unclosed\'` (a value that is broken YAML)', args: ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml', '-e', 'k=[unclosed'], expect: /-e "k=\[unclosed": the value of k is not valid YAML: Flow sequence must end with a \] \(column 10\)/,
});
arg({ id: 'ARG-09', input: '`--limit ghost` (no such host or group)', args: ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml', '--limit', 'ghost'], expect: /--limit "ghost": no host or group named "ghost" in .*inv\.yml/ });
arg({
  id: 'ARG-10', input: '`--limit \'\'` (an empty pattern, e.g. an unset shell variable)', args: ['plan', 'DIR/pb.yml', '-i', 'DIR/inv.yml', '--limit', ''], expect: /--limit.* is empty/,
});
arg({ id: 'ARG-11', input: '`apply plan.json` of a JSON file that is no plan', files: { 'plan.json': '{"version": 99}' }, args: ['apply', 'DIR/plan.json'], expect: /plan\.json: not a plan file of format 1/ });

// -- inventories
const host1 = (entry: string) => inventory(`all:\n  vars:\n    vault_pass: !secret ${INV_SECRET}\n  hosts:\n    node1: ${entry}\n`);
inv({ id: 'INV-01', input: 'host `port: 70000`', files: host1('{ address: 127.0.0.2, port: 70000 }'), expect: /inv\.yml:5:34, key "port": inventory host "node1": "port" must be <= 65535/ });
inv({ id: 'INV-02', input: 'host `port: "ssh"` (a string)', files: host1('{ address: 127.0.0.2, port: "ssh" }'), expect: /inv\.yml:5:34, key "port": inventory host "node1": "port" must be integer/ });
inv({ id: 'INV-03', input: 'unknown key `colour:` beside all\'s hosts', files: inventory('all:\n  hosts:\n    node1: { address: 127.0.0.2, port: 1 }\n  colour: blue\n'), expect: /inv\.yml:4:3, key "colour": inventory: "all" unknown key "colour"/ });
inv({ id: 'INV-04', input: 'top group misspelt `al:`', files: inventory('al:\n  hosts:\n    node1: { address: 127.0.0.2, port: 1 }\n'), expect: /inv\.yml:1:1, key "all": inventory: missing required key "all"/ });
inv({ id: 'INV-05', input: '`connection: telnet`', files: host1('{ address: 127.0.0.2, port: 1, connection: telnet }'), expect: /inv\.yml:5:43, key "connection": inventory host "node1": "connection" must be one of "ssh", "local"/ });
inv({ id: 'INV-06', input: 'YAML syntax error: a missing comma in a flow mapping', files: inventory('all:\n  hosts:\n    node1: { address: 127.0.0.2 port: 1 }\n'), expect: /inv\.yml:3:\d+: invalid YAML: / });
inv({ id: 'INV-07', input: '`hosts:` is a list, not a mapping', files: inventory('all:\n  hosts: [node1, node2]\n'), expect: /inv\.yml:2:10, key "hosts": inventory: "all\.hosts" must be object,null/ });
inv({ id: 'INV-08', input: 'host `address: ""`', files: host1('{ address: "", port: 1 }'), expect: /inv\.yml:5:\d+, key "address": inventory host "node1": "address" must NOT have fewer than 1 characters/ });
inv({ id: 'INV-09', input: '`become: "sometimes"` on a host of a child group', files: inventory('all:\n  hosts:\n    node1: { address: 127.0.0.2, port: 1 }\n  children:\n    web:\n      hosts:\n        node2: { address: 127.0.0.2, port: 2, become: "sometimes" }\n'), expect: /inv\.yml:7:\d+, key "become": inventory host "node2": "become" must be boolean/ });
inv({ id: 'INV-10', input: 'a host entry that is a string (`node1: "127.0.0.2"`)', files: host1('"127.0.0.2"'), expect: /inv\.yml:5:5, key "node1": inventory: "all\.hosts\.node1" must be object,null/ });
inv({ id: 'INV-11', input: 'group_vars/ file for a group the inventory does not have', files: { 'group_vars/nosuch.yml': 'a: 1\n' }, expect: /group_vars\/nosuch\.yml: group_vars for unknown group "nosuch"/ });
inv({ id: 'INV-12', input: 'host_vars/node1.yml holding a list', files: { 'host_vars/node1.yml': '- a\n- b\n' }, expect: /host_vars\/node1\.yml: must be a mapping of variables/ });
inv({ id: 'INV-13', input: 'hosts at 127.0.0.2 ports 1 and 2, where nothing listens (plan)', expect: /unreachable: \[node1\]: ssh root@127\.0\.0\.2:1: connect ECONNREFUSED[\s\S]*Plan INCOMPLETE: node1, node2 failed or unreachable/ });
inv({
  id: 'INV-14', input: 'an empty inventory file', files: inventory(''), expect: /inv\.yml(:\d+:\d+)?: .*inventory/,
});
inv({
  id: 'INV-15', input: 'a binary file (ELF header + 2 KB of bytes) as the inventory', files: { 'inv.yml': binary('7f454c460201010000000000') }, expect: /inv\.yml(:\d+:\d+)?: .*inventory/,
});
inv({ id: 'INV-16', input: 'the inventory file does not exist', args: ['plan', 'DIR/pb.yml', '-i', 'DIR/nope.yml'], expect: /nope\.yml: cannot read: ENOENT/ });
inv({
  id: 'INV-17', input: '`ansible_port: "abc"`', files: inventory('all:\n  hosts:\n    node1: { ansible_host: 127.0.0.2, ansible_port: "abc" }\n'), expect: /inv\.yml:3:39, key "ansible_port": inventory host "node1": "ansible_port" must be a port number, an integer from 1 to 65535, got "abc"/,
});
inv({
  id: 'INV-18', input: '`ansible_port: 99999` in all\'s vars', files: inventory('all:\n  vars:\n    ansible_port: 99999\n  hosts:\n    node1: { ansible_host: 127.0.0.2 }\n'), expect: /inv\.yml:3:5, key "ansible_port": inventory host "node1": "ansible_port" must be a port number, an integer from 1 to 65535, got 99999/, within: 5000,
});

// ---------------------------------------------------------------------------------------------
// CLI: `orama` with a temp state (seeded with a namespace's JWT key, API key and TURN secret)

const seeded = tempDir(t, 'bad-input-seed-');
const SEEDED = { jwt: '', apiKey: '', turn: randomBytes(32).toString('base64url') };
{
  const store = await openSqliteStore(join(seeded, 'state.db'));
  SEEDED.jwt = (await store.putJwtKeyIfAbsent(generateJwtKey('seeded'))).signingKey.reveal();
  SEEDED.apiKey = (await store.createApiKey({ namespace: 'seeded', subject: 'alice', owner: true })).key.reveal();
  await store.putWebrtcConfig({ namespace: 'seeded', enabled: true, turnSecret: new Secret(SEEDED.turn), sfuNodeCount: 3, turnNodeCount: 2, turnTtl: 600 });
  await store.close();
}
const node = (i: number) => `    node${i}: { address: 127.0.0.2, port: ${i}, public_ip: 127.0.0.${i + 1}, wg_ip: 10.0.0.${i} }`;
const clusterInventory = (nodes: string[], group = 'cluster') =>
  `all:\n  hosts:\n${nodes.join('\n')}\n  children:\n    ${group}:\n      hosts: { ${nodes.map((_, i) => `node${i + 1}: {}`).join(', ')} }\n`;
const CLUSTER = clusterInventory([node(1), node(2), node(3)]);

interface CliRow {
  id: string;
  input: string;
  /** DIR is replaced by the temp dir. */
  args: string[];
  expect: RegExp;
  todo?: string;
  inventory?: string;
  /** Start without a state file (default: a copy of the seeded one). */
  noState?: boolean;
  /** Run in the temp dir instead of the repository (relative paths land where they are seen). */
  inDir?: boolean;
}

function cli(r: CliRow) {
  rows.push({
    id: r.id, area: 'orama command line', input: r.input, expect: r.expect, todo: r.todo,
    proof: 'state DB: sha256 of every table; temp dir (state, inventory, HOME): sha256 of every file; before = after',
    async run(t) {
      const dir = tempDir(t, `bad-input-${r.id}-`);
      mkdirSync(join(dir, 'home'));
      writeFileSync(join(dir, 'inv.yml'), r.inventory ?? CLUSTER);
      if (!r.noState) cpSync(join(seeded, 'state.db'), join(dir, 'state.db'));
      const state = join(dir, 'state.db');
      const env = { ORAMA_STATE: state, ORAMA_INVENTORY: join(dir, 'inv.yml'), ORAMA_BASE_DOMAIN: 'orama.test', HOME: join(dir, 'home') };
      const args = r.args.map((a) => a.replaceAll('DIR', dir));
      const fp = () => ({ files: treeFingerprint(dir), db: dbFingerprint(state) });
      const before = fp();
      const res = r.inDir ? await runIn(dir, 'orama.js', args, env) : await orama(args, env);
      return { text: res.out, exit: res.code, before, after: fp(), secrets: [SEEDED.jwt, SEEDED.apiKey, SEEDED.turn] };
    },
  });
}

const enable = (...more: string[]) => ['namespace', 'enable', 'webrtc', ...more];
cli({ id: 'CLI-01', input: 'unknown command (`orama frobnicate`)', args: ['frobnicate'], expect: /orama: unknown command "frobnicate"/ });
cli({ id: 'CLI-02', input: 'unknown namespace verb (`orama namespace frobnicate`)', args: ['namespace', 'frobnicate', 'webrtc', '--namespace', 'x'], expect: /unknown verb "frobnicate" \(enable webrtc, disable webrtc, webrtc-status\)/ });
cli({ id: 'CLI-03', input: 'enable something else than webrtc (`enable sip`)', args: ['namespace', 'enable', 'sip', '--namespace', 'x'], expect: /only "webrtc" can be enabled, got "sip"/ });
cli({ id: 'CLI-04', input: 'enable without --namespace', args: enable('--plan'), expect: /--namespace NAME is required/ });
cli({ id: 'CLI-05', input: '--namespace with uppercase (`MyApp`)', args: enable('--namespace', 'MyApp', '--plan'), expect: /--namespace "MyApp": must match \/\^\[a-z0-9\]\[a-z0-9-\]\{0,59\}\$\/ \(lowercase letters, digits, dashes\)/ });
cli({ id: 'CLI-06', input: '--namespace of 64 characters', args: enable('--namespace', 'a'.repeat(64), '--plan'), expect: new RegExp(`--namespace "${'a'.repeat(64)}": must match`) });
cli({ id: 'CLI-36', input: '--namespace of 61 characters (ns-NAME would not fit a 63-character DNS label)', args: enable('--namespace', 'a'.repeat(61), '--plan'), expect: new RegExp(`--namespace "${'a'.repeat(61)}": must match`) });
cli({ id: 'CLI-07', input: '--namespace with a leading dash (`--namespace=-x`)', args: enable('--namespace=-x', '--plan'), expect: /--namespace "-x": must match/ });
cli({ id: 'CLI-08', input: '--namespace followed by a dash word (`--namespace -x`)', args: enable('--namespace', '-x', '--plan'), expect: /Option '--namespace' argument is ambiguous/ });
cli({ id: 'CLI-09', input: '--namespace with path traversal (`../x`)', args: enable('--namespace', '../x', '--plan'), expect: /--namespace "\.\.\/x": must match/ });
cli({ id: 'CLI-10', input: 'empty --namespace (`--namespace ""`)', args: enable('--namespace', '', '--plan'), expect: /--namespace NAME is required/ });
cli({ id: 'CLI-11', input: 'disable with path traversal (`disable webrtc --namespace ../../etc`)', args: ['namespace', 'disable', 'webrtc', '--namespace', '../../etc'], expect: /--namespace "\.\.\/\.\.\/etc": must match/ });
cli({ id: 'CLI-12', input: 'unknown --env', args: enable('--namespace', 'x', '--env', 'nope', '--plan'), expect: /--env "nope": no such environment \(known: local, vagrant/ });
cli({ id: 'CLI-13', input: '--env that is no environment name (`Dev Net`)', args: enable('--namespace', 'x', '--env', 'Dev Net', '--plan'), expect: /--env "Dev Net": an environment name is lowercase letters, digits and dashes/ });
cli({ id: 'CLI-14', input: 'unknown option `--bogus`', args: enable('--namespace', 'x', '--bogus'), expect: /Unknown option '--bogus'/ });
cli({ id: 'CLI-15', input: '`--state http://` (a URL without a host)', args: ['token', 'mint', '--namespace', 'ns1', '--subject', 'a', '--state', 'http://'], expect: /store\.urls: not a URL: "http:\/\/"/ });
cli({ id: 'CLI-16', input: '`--state DIR` (a directory, not a SQLite file)', args: ['token', 'mint', '--namespace', 'ns1', '--subject', 'a', '--state', 'DIR'], expect: /cannot open SQLite state file .*bad-input-CLI-16-\w+: unable to open database file/ });
cli({
  id: 'CLI-17', input: '`--state ftp://x` (neither a path nor an http(s) URL)', args: ['apikey', 'create', '--namespace', 'ns1', '--subject', 'a', '--state', 'ftp://x'], inDir: true, expect: /--state "ftp:\/\/x": ftp: is no store's URL scheme; the operator store is a SQLite file path or http\(s\):\/\/ rqlite URL\(s\)/,
});
cli({
  id: 'CLI-18', input: '`--state ""` (empty)', args: ['apikey', 'create', '--namespace', 'ns1', '--subject', 'a', '--state', ''], expect: /--state "": empty; the operator store is a SQLite file path or http\(s\):\/\/ rqlite URL\(s\)/,
});
cli({ id: 'CLI-19', input: '`token mint --ttl 0`', args: ['token', 'mint', '--namespace', 'ns1', '--subject', 'a', '--ttl', '0'], expect: /--ttl must be whole seconds between 1 and 2678400, got "0"/ });
cli({ id: 'CLI-20', input: '`token mint --alg none`', args: ['token', 'mint', '--namespace', 'ns1', '--subject', 'a', '--alg', 'none'], expect: /--alg must be HS256, ES256 or EdDSA, got "none"/ });
cli({ id: 'CLI-21', input: '`token mint --namespace NS1` (uppercase)', args: ['token', 'mint', '--namespace', 'NS1', '--subject', 'a'], expect: /--namespace: invalid namespace name "NS1"/ });
cli({ id: 'CLI-22', input: '`token mint --alg ES256` for a namespace that has an HS256 key', args: ['token', 'mint', '--namespace', 'seeded', '--subject', 'a', '--alg', 'ES256'], expect: /namespace "seeded" already has a HS256 key \(kid [0-9a-f]+\); --alg ES256 cannot change it/ });
cli({ id: 'CLI-23', input: '`apikey revoke --id nope` (no such key)', args: ['apikey', 'revoke', '--namespace', 'seeded', '--id', 'nope'], expect: /no active API key "nope" in namespace "seeded"/ });
cli({ id: 'CLI-24', input: '`apikey list` with a stray positional argument', args: ['apikey', 'list', '--namespace', 'seeded', 'extra'], expect: /Unexpected argument 'extra'/ });
cli({
  id: 'CLI-25', input: '`apikey create --env nope`', args: ['apikey', 'create', '--namespace', 'ns1', '--subject', 'a', '--env', 'nope'], expect: /--env "nope": no such environment/,
});
cli({
  id: 'CLI-26', input: '`namespace webrtc-status --namespace ../x`', args: ['namespace', 'webrtc-status', '--namespace', '../x'], expect: /--namespace "\.\.\/x": must match/,
});
cli({
  id: 'CLI-27', input: '`inspector --namespace ../x`', args: ['inspector', '--namespace', '../x'], expect: /--namespace "\.\.\/x": must match/,
});
cli({ id: 'CLI-28', input: 'enable with an inventory whose cluster group has 1 host', inventory: clusterInventory([node(1)]), args: enable('--namespace', 'okns', '--plan'), expect: /inv\.yml: group "cluster" has 1 hosts; WebRTC needs at least 2/ });
cli({ id: 'CLI-29', input: 'enable with an inventory host without `public_ip`', inventory: clusterInventory([node(1), '    node2: { address: 127.0.0.2, port: 2, wg_ip: 10.0.0.2 }', node(3)]), args: enable('--namespace', 'okns', '--plan'), expect: /inv\.yml(:\d+:\d+)?: host node2 has no "public_ip" variable/ });
cli({ id: 'CLI-30', input: 'enable with an inventory without a `cluster` group', inventory: clusterInventory([node(1), node(2), node(3)], 'nodes'), args: enable('--namespace', 'okns', '--plan'), expect: /inv\.yml: the inventory has no group "cluster"/ });
cli({ id: 'CLI-31', input: 'enable `-i` of a missing inventory', args: enable('--namespace', 'okns', '--plan', '-i', 'DIR/nope.yml'), expect: /inventory .*nope\.yml of environment "local" does not exist/ });
cli({ id: 'CLI-32', input: 'enable `--force` (a disable-only option)', args: enable('--namespace', 'okns', '--force'), expect: /--force is for disable only/ });
cli({
  id: 'CLI-33', input: 'enable `--namespace MyApp` when there is no state file yet', noState: true, args: enable('--namespace', 'MyApp', '--plan'), expect: /--namespace "MyApp": must match/,
});
cli({
  id: 'CLI-34', input: 'enable `--base-domain "not a domain"`', args: enable('--namespace', 'okns', '--plan', '--base-domain', 'not a domain'), expect: /--base-domain "not a domain": not a DNS name: the label "not a domain" holds characters other than a-z, 0-9 and -/,
});

cli({
  id: 'CLI-35', input: '`--state :memory:`', args: ['apikey', 'create', '--namespace', 'ns1', '--subject', 'a', '--state', ':memory:'], inDir: true, expect: /--state ":memory:": SQLite's in-memory database is gone when the command ends/,
});
// -- the SFU engine (`--sfu-engine`, the inventory's `sfu_engine`): checked before anything is decided or stored
cli({ id: 'CLI-37', input: 'enable `--sfu-engine janus` (no such engine; not a plan)', args: enable('--namespace', 'okns', '--sfu-engine', 'janus'), expect: /--sfu-engine "janus": must be one of werift, mediasoup/ });
cli({ id: 'CLI-38', input: 'enable `--sfu-engine ""` (empty, e.g. an unset shell variable)', args: enable('--namespace', 'okns', '--sfu-engine', '', '--plan'), expect: /--sfu-engine "": must be one of werift, mediasoup/ });
cli({ id: 'CLI-39', input: '`disable webrtc --sfu-engine werift` (an enable-only option)', args: ['namespace', 'disable', 'webrtc', '--namespace', 'seeded', '--sfu-engine', 'werift'], expect: /--sfu-engine is for enable only/ });
cli({
  id: 'CLI-40', input: 'enable with an inventory host `sfu_engine: janus` (not a plan)', inventory: clusterInventory([node(1), '    node2: { address: 127.0.0.2, port: 2, public_ip: 127.0.0.3, wg_ip: 10.0.0.2, sfu_engine: janus }', node(3)]),
  args: enable('--namespace', 'okns'), expect: /inv\.yml:4:\d+, key "sfu_engine": host node2: sfu_engine is "janus"; it is one of werift, mediasoup/,
});
cli({
  id: 'CLI-41', input: 'enable with `sfu_engine: mediasoup` on one host of the cluster only', inventory: clusterInventory(['    node1: { address: 127.0.0.2, port: 1, public_ip: 127.0.0.2, wg_ip: 10.0.0.1, sfu_engine: mediasoup }', node(2), node(3)]),
  args: enable('--namespace', 'okns', '--plan'), expect: /inv\.yml, key "sfu_engine": sfu_engine differs between the hosts of group "cluster" \(node1: mediasoup; node2, node3: \(not set\)\): a namespace runs one engine on every node/,
});

// ---------------------------------------------------------------------------------------------
// REST / JWT: the gateway of ns-a (gatewayFixture) over fastify inject, a stand-in SFU behind it

const KEY = `internal-key-${randomBytes(16).toString('hex')}`;
const standin = await startStandinSfu('node-1', KEY);
t.teardown(() => standin.stop());
const gw = await gatewayFixture(t, { internalKey: KEY, sfuNodes: [{ node: 'node-1', ip: standin.ip, signal_port: standin.port }] });
await gw.store.createRoom({ namespace: 'ns-a', roomId: 'lobby', sfuNode: 'node-1', owner: 'alice' });
const GW_SECRETS = [gw.turnSecret, gw.internalKey, gw.keys['ns-a'].signingKey.reveal(), gw.keys['ns-b'].signingKey.reveal(), await gw.apiKey('ns-a', 'svc'), await gw.apiKey('ns-b', 'mallory', true)];
const gwDb = new Database(join(gw.dir, 'state.db'));
t.teardown(() => gwDb.close());
await gw.app.listen({ host: '127.0.0.1', port: 0 });
const gwPort = (gw.app.server.address() as { port: number }).port;
const OWNER = { authorization: `Bearer ${await gw.token('ns-a', 'alice', { owner: true })}` };
const MEMBER_TOKEN = await gw.token('ns-a', 'bob');
const GW_PROOF = 'gateway store: sha256 of every table (rooms, API keys, JWT keys, TURN config), before = after; no secret in the body or the log';

async function gatewayOutcome(send: () => Promise<{ status: number; body: string }>): Promise<Outcome> {
  const before = tableHashes(gwDb);
  const logsAt = gw.logs.length;
  const res = await send();
  return { text: res.body, status: res.status, before, after: tableHashes(gwDb), secrets: GW_SECRETS, logs: gw.logs.slice(logsAt).join('') };
}
const inject = (req: InjectOptions) => async () => {
  const res = await gw.app.inject(req);
  return { status: res.statusCode, body: res.body };
};

function rest(id: string, input: string, req: InjectOptions, expect: RegExp, status?: number, todo?: string) {
  rows.push({ id, area: 'gateway REST', input, expect, status, todo, proof: GW_PROOF, run: () => gatewayOutcome(inject(req)) });
}
const json = { ...OWNER, 'content-type': 'application/json' };
const ROOMS = '/v1/webrtc/rooms';
const CREDS = '/v1/webrtc/turn/credentials';
const PATTERN = /must match pattern \\"\^\[A-Za-z0-9\]\[A-Za-z0-9_\.-\]\{0,63\}\$\\"/.source;

rest('REST-01', 'POST rooms: body `{"room_id": ` (broken JSON)', { method: 'POST', url: ROOMS, headers: json, payload: '{"room_id": ' }, /"error":"bad_request".*Body is not valid JSON/, 400);
rest('REST-02', 'POST rooms: `room_id` a number', { method: 'POST', url: ROOMS, headers: OWNER, payload: { room_id: 5 } }, /body\/room_id must be string/, 400);
rest('REST-03', 'POST rooms: unknown field `colour`', { method: 'POST', url: ROOMS, headers: OWNER, payload: { room_id: 'ok', colour: 'x' } }, /colour/, 400);
rest('REST-04', 'POST rooms: room name with path traversal (`../etc`)', { method: 'POST', url: ROOMS, headers: OWNER, payload: { room_id: '../etc' } }, new RegExp(`body/room_id ${PATTERN}`), 400);
rest('REST-05', 'POST rooms: room name of 65 characters', { method: 'POST', url: ROOMS, headers: OWNER, payload: { room_id: 'r'.repeat(65) } }, new RegExp(`body/room_id ${PATTERN}`), 400);
rest('REST-06', 'POST rooms: empty room name', { method: 'POST', url: ROOMS, headers: OWNER, payload: { room_id: '' } }, new RegExp(`body/room_id ${PATTERN}`), 400);
rest('REST-07', 'POST rooms: room name with a space and a NUL', { method: 'POST', url: ROOMS, headers: OWNER, payload: { room_id: 'a b\u0000' } }, new RegExp(`body/room_id ${PATTERN}`), 400);
rest('REST-08', 'POST rooms: `{}` (no room_id)', { method: 'POST', url: ROOMS, headers: OWNER, payload: {} }, /body must have required property 'room_id'/, 400);
rest('REST-09', 'POST rooms: a JSON array as the body', { method: 'POST', url: ROOMS, headers: json, payload: '[{"room_id":"x"}]' }, /body must be object/, 400);
rest('REST-10', 'POST rooms: the JSON literal `null`', { method: 'POST', url: ROOMS, headers: json, payload: 'null' }, /body must be object/, 400);
rest('REST-11', 'POST rooms: a 17 KB body (limit 16 KB)', { method: 'POST', url: ROOMS, headers: json, payload: JSON.stringify({ room_id: 'big', pad: 'x'.repeat(17_000) }) }, /"error":"payload_too_large".*too large/, 413);
rest('REST-12', 'POST rooms: `content-type: text/plain`', { method: 'POST', url: ROOMS, headers: { ...OWNER, 'content-type': 'text/plain' }, payload: 'room_id=x' }, /body must be object|unsupported/i);
rest('REST-13', 'POST rooms: `content-type: application/x-www-form-urlencoded`', { method: 'POST', url: ROOMS, headers: { ...OWNER, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'room_id=x' }, /"error":"unsupported_media_type"/, 415);
rest('REST-14', 'POST rooms: prototype pollution (`{"__proto__": {…}}`)', { method: 'POST', url: ROOMS, headers: json, payload: '{"__proto__":{"owner":"mallory"},"room_id":"p"}' }, /"error":"bad_request"/, 400);
rest('REST-15', 'POST credentials: `ttl` a string', { method: 'POST', url: CREDS, headers: OWNER, payload: { ttl: 'long' } }, /body\/ttl must be integer/, 400);
rest('REST-16', 'POST credentials: `ttl: 10` (minimum 60)', { method: 'POST', url: CREDS, headers: OWNER, payload: { ttl: 10 } }, /body\/ttl must be >= 60/, 400);
rest('REST-17', 'POST credentials: `ttl: 1e9` (maximum 86400)', { method: 'POST', url: CREDS, headers: OWNER, payload: { ttl: 1e9 } }, /body\/ttl must be <= 86400/, 400);
rest('REST-18', 'POST credentials: `ttl: 600.5`', { method: 'POST', url: CREDS, headers: OWNER, payload: { ttl: 600.5 } }, /body\/ttl must be integer/, 400);
rest('REST-19', 'POST credentials: empty body with `content-type: application/json`', { method: 'POST', url: CREDS, headers: json, payload: '' }, /Body cannot be empty when content-type is set to 'application\/json'/, 400);
rest('REST-20', 'GET rooms: unknown query parameter `?x=1`', { method: 'GET', url: `${ROOMS}?x=1`, headers: OWNER }, /querystring.*\bx\b/, 400);
rest('REST-21', 'DELETE rooms without `room_id`', { method: 'DELETE', url: ROOMS, headers: OWNER }, /querystring must have required property 'room_id'/, 400);
rest('REST-22', 'DELETE rooms: `room_id` given twice', { method: 'DELETE', url: `${ROOMS}?room_id=lobby&room_id=other`, headers: OWNER }, /querystring\/room_id must be string/, 400);
rest('REST-23', 'DELETE rooms: bad percent-encoding (`%ZZ`)', { method: 'DELETE', url: `${ROOMS}?room_id=%ZZ`, headers: OWNER }, new RegExp(`querystring/room_id ${PATTERN}`), 400);
rest('REST-24', 'DELETE rooms: a room that does not exist', { method: 'DELETE', url: `${ROOMS}?room_id=nosuch`, headers: OWNER }, /room \\"nosuch\\" does not exist in namespace \\"ns-a\\"/, 404);
rest('REST-25', 'GET signal without `room`', { method: 'GET', url: '/v1/webrtc/signal', headers: OWNER }, /querystring must have required property 'room'/, 400);
rest('REST-26', 'PUT rooms (no such method)', { method: 'PUT', url: ROOMS, headers: OWNER }, /no route PUT \/v1\/webrtc\/rooms/, 404);
rest('REST-27', 'no Authorization and no x-api-key', { method: 'POST', url: ROOMS, payload: { room_id: 'r' } }, /missing credentials: send Authorization: Bearer <jwt> or x-api-key/, 401);
rest('REST-28', '`Authorization: Basic …`', { method: 'POST', url: ROOMS, headers: { authorization: 'Basic YWxpY2U6cGFzcw==' }, payload: { room_id: 'r' } }, /token malformed/, 401);
rest('REST-29', '`Authorization: Bearer` with no token', { method: 'POST', url: ROOMS, headers: { authorization: 'Bearer' }, payload: { room_id: 'r' } }, /token malformed/, 401);
rest('REST-30', '`Authorization: Bearer a b` (two words)', { method: 'POST', url: ROOMS, headers: { authorization: 'Bearer a b' }, payload: { room_id: 'r' } }, /token malformed/, 401);
rest('REST-31', 'empty `x-api-key`', { method: 'POST', url: ROOMS, headers: { 'x-api-key': '' }, payload: { room_id: 'r' } }, /missing credentials/, 401);
rest('REST-32', '`x-api-key` of 100 KB', { method: 'POST', url: ROOMS, headers: { 'x-api-key': `oak_${'x'.repeat(100_000)}` }, payload: { room_id: 'r' } }, /invalid or revoked API key/, 401);
rest('REST-33', 'two `x-api-key` headers', { method: 'POST', url: ROOMS, headers: { 'x-api-key': ['oak_a', 'oak_b'] }, payload: { room_id: 'r' } }, /invalid or revoked API key|missing credentials/, 401);

// -- JWTs, each on POST /v1/webrtc/rooms {room_id: "jwt-probe"}: accepting one would create the room
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const NS_A_SECRET = gw.keys['ns-a'].signingKey.reveal();
function hmacJwt(header: object, payload: unknown, key = NS_A_SECRET, algo = 'sha256'): string {
  const signed = `${b64(header)}.${b64(payload)}`;
  return `${signed}.${createHmac(algo, key).update(signed).digest('base64url')}`;
}
const HS = { alg: 'HS256', typ: 'JWT' };
const claims = () => {
  const now = Math.floor(Date.now() / 1000);
  return { namespace: 'ns-a', sub: 'alice', role: 'owner', iat: now, exp: now + 600 };
};
function jwt(id: string, input: string, token: () => string | Promise<string>, expect: RegExp, status = 401, todo?: string) {
  rows.push({
    id, area: 'JWT', input, expect, status, todo, proof: GW_PROOF,
    run: async () => {
      const tok = await token();
      return gatewayOutcome(inject({ method: 'POST', url: ROOMS, headers: { authorization: `Bearer ${tok}` }, payload: { room_id: 'jwt-probe' } }));
    },
  });
}
jwt('JWT-01', '`alg: none`, no signature', () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`, /token (malformed|algorithm not allowed)/);
jwt('JWT-02', '`alg: none` with a signature segment', () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.${b64('sig')}`, /token algorithm not allowed \(expected HS256\)/);
jwt('JWT-03', '`alg: HS512`, signed with the right key', () => hmacJwt({ alg: 'HS512', typ: 'JWT' }, claims(), NS_A_SECRET, 'sha512'), /token algorithm not allowed \(expected HS256\)/);
jwt('JWT-04', '`alg: RS256` header over an HMAC signature', () => hmacJwt({ alg: 'RS256', typ: 'JWT' }, claims()), /token algorithm not allowed \(expected HS256\)/);
jwt('JWT-05', 'expired an hour ago', () => gw.token('ns-a', 'alice', { owner: true, ttl: 10, now: Math.floor(Date.now() / 1000) - 3600 }), /token expired/);
jwt('JWT-06', 'not valid yet (`nbf` an hour ahead)', () => hmacJwt(HS, { ...claims(), nbf: Math.floor(Date.now() / 1000) + 3600 }), /token not valid yet/);
jwt('JWT-07', 'a token of namespace ns-b (signed with ns-b\'s key)', () => gw.token('ns-b', 'mallory', { owner: true }), /token signature invalid/);
jwt('JWT-08', 'signed with ns-a\'s key but claiming namespace ns-b', () => mintToken({ ...gw.keys['ns-a'], namespace: 'ns-b' }, { subject: 'mallory', owner: true, ttl: 600 }), /"error":"forbidden".*a principal of namespace \\"ns-b\\" may not use namespace \\"ns-a\\"/, 403);
jwt('JWT-09', 'signature of another key', () => hmacJwt(HS, claims(), randomBytes(32).toString('base64url')), /token signature invalid/);
jwt('JWT-10', 'payload changed (member → owner), signature kept', () => {
  const [h, , s] = hmacJwt(HS, { ...claims(), role: 'member' }).split('.');
  return `${h}.${b64(claims())}.${s}`;
}, /token signature invalid/);
jwt('JWT-11', 'malformed base64 (`@@@@` as the payload)', () => `${b64(HS)}.@@@@.${b64('sig')}`, /token malformed/);
jwt('JWT-12', 'a header that is not JSON', () => `${b64('not json')}.${b64(claims())}.${b64('sig')}`, /token malformed/);
jwt('JWT-13', 'two segments only', () => `${b64(HS)}.${b64(claims())}`, /token malformed/);
jwt('JWT-14', 'no `exp`', () => hmacJwt(HS, { namespace: 'ns-a', sub: 'alice', role: 'owner' }), /token claim \\"exp\\" missing/);
jwt('JWT-15', '`exp` a string', () => hmacJwt(HS, { ...claims(), exp: String(claims().exp) }), /token claim \\"exp\\" invalid/);
jwt('JWT-16', 'no `namespace`', () => { const { namespace: _, ...c } = claims(); return hmacJwt(HS, c); }, /token claim \\"namespace\\" missing/);
jwt('JWT-17', '`namespace` a number', () => hmacJwt(HS, { ...claims(), namespace: 7 }), /token claim \\"namespace\\" invalid/);
jwt('JWT-18', 'empty `sub`', () => hmacJwt(HS, { ...claims(), sub: '' }), /token claim \\"sub\\" invalid/);
jwt('JWT-19', '`sub` of 300 characters', () => hmacJwt(HS, { ...claims(), sub: 's'.repeat(300) }), /token claim \\"sub\\" invalid/);
jwt('JWT-20', 'payload a JSON array', () => hmacJwt(HS, [1, 2]), /token malformed/);
jwt('JWT-21', 'oversized garbage token (100 KB)', () => `${b64(HS)}.${'A'.repeat(100_000)}.${b64('sig')}`, /token malformed/);
rows.push({
  id: 'JWT-22', area: 'JWT', input: 'validly signed token of 20 KB (a padded claim), over real HTTP on 127.0.0.1', expect: /Request Header Fields Too Large|header size/i, status: 431, proof: GW_PROOF,
  run: () => gatewayOutcome(async () => {
    const res = await fetch(`http://127.0.0.1:${gwPort}${ROOMS}`, { method: 'POST', headers: { authorization: `Bearer ${hmacJwt(HS, { ...claims(), pad: 'x'.repeat(20_000) })}`, 'content-type': 'application/json' }, body: '{"room_id":"jwt-probe"}' });
    return { status: res.status, body: await res.text() };
  }),
});
rows.push({
  id: 'JWT-23', area: 'JWT', input: 'ES256 gateway: an HS256 token HMAC-signed with the gateway\'s public key (algorithm confusion)', expect: /token algorithm not allowed \(expected ES256\)/, status: 401,
  proof: 'the ES256 gateway\'s store: sha256 of every table, before = after',
  async run(t) {
    const es = await gatewayFixture(t, { alg: 'ES256' });
    const db = new Database(join(es.dir, 'state.db'));
    t.teardown(() => db.close());
    const before = tableHashes(db);
    const res = await es.app.inject({ method: 'POST', url: ROOMS, headers: { authorization: `Bearer ${hmacJwt(HS, claims(), es.keys['ns-a'].publicKey!)}` }, payload: { room_id: 'jwt-probe' } });
    return { text: res.body, status: res.statusCode, before, after: tableHashes(db), secrets: [es.turnSecret, es.internalKey, es.keys['ns-a'].signingKey.reveal()], logs: es.logs.join('') };
  },
});

// ---------------------------------------------------------------------------------------------
// SIG: signaling frames into the SFU's Session (a real Sfu over a stub media engine), after a
// valid join; and a few through the gateway's WebSocket proxy on 127.0.0.1

const sfuDir = tempDir(t, 'bad-input-sfu-');
const SFU_TURN_SECRET = `sfu-turn-${randomBytes(16).toString('hex')}`;
const SFU_KEY = `sfu-key-${randomBytes(16).toString('hex')}`;
writeFileSync(join(sfuDir, 'turn'), SFU_TURN_SECRET);
writeFileSync(join(sfuDir, 'key'), SFU_KEY);
const sfuConfig = resolveSfuConfig({
  namespace: 'signs', listen_ip: '10.0.0.1', signal_port: 0, media_port_min: 40000, media_port_max: 40010,
  turn_urls: ['turn:10.0.0.2:3478?transport=udp'], turn_relay_ips: ['10.0.0.2'],
  turn_secret_file: join(sfuDir, 'turn'), internal_key_file: join(sfuDir, 'key'),
});
/** No media: the rows never get past signaling validation. */
const stubConnection = (): EngineConnection => ({
  signalingState: 'stable',
  acceptOffer: async () => 'v=0\r\n',
  createOffer: async () => 'v=0\r\n',
  acceptAnswer: async () => undefined,
  addRemoteCandidate: async () => undefined,
  consume: () => { throw new Error('no media in this test'); },
  stopConsumer: () => undefined,
  sendData: () => false,
  selectedRemoteAddress: () => undefined,
  mediaSections: () => 0,
  close: async () => undefined,
  onLocalCandidate: () => undefined,
  onProducer: () => undefined,
  onData: () => undefined,
  onStateChange: () => undefined,
});
const stubEngine: MediaEngine = {
  name: 'werift', simulcast: false, createConnection: stubConnection, totals: async () => ({ bytesIn: 0, packetsIn: 0, bytesOut: 0, packetsOut: 0, keyframeRequests: 0 }),
  failure: () => undefined, workers: async () => [], close: async () => undefined,
};
const SIG_PROOF = 'SFU: rooms and their peers, this connection\'s peer, and its close calls (none), before = after';

function sig(id: string, input: string, frame: string | Buffer, expect: RegExp, opts: { joined?: boolean; todo?: string } = {}) {
  rows.push({
    id, area: 'signaling (SFU session)', input, expect, todo: opts.todo, proof: SIG_PROOF,
    async run(t) {
      const sfu = new Sfu(sfuConfig, stubEngine);
      const sent: ServerMessage[] = [];
      const closes: [number, string][] = [];
      const session = new Session(sfu, { send: (m) => sent.push(m), close: (code, reason) => closes.push([code, reason]) }, 'r1', 'alice');
      t.teardown(() => sfu.close());
      if (opts.joined !== false) {
        await session.receive(JSON.stringify({ type: 'join', room: 'r1', display: { name: 'Alice' } }));
        if (sent[0]?.type !== 'joined') throw new Error(`the valid join was refused: ${JSON.stringify(sent)}`);
      }
      sent.length = 0;
      const state = () => ({ rooms: [...sfu.rooms].map(([name, room]) => [name, [...room.peers.keys()]]), peer: session.peer?.id ?? null, closes: [...closes] });
      const before = state();
      await session.receive(frame);
      return { text: JSON.stringify(sent), before, after: state(), secrets: [SFU_TURN_SECRET, SFU_KEY] };
    },
  });
}
const MAX = 64 * 1024;
sig('SIG-01', 'not JSON (`{oops`)', '{oops', /"code":"bad_json","message":"frame is not valid JSON"/);
sig('SIG-02', 'a JSON array', '[]', /"code":"invalid_message","message":"a message is an object with a string \\"type\\""/);
sig('SIG-03', '`type` a number', '{"type":5}', /"code":"invalid_message","message":"a message is an object with a string \\"type\\""/);
sig('SIG-04', 'unknown type `dance`', '{"type":"dance"}', /"code":"unknown_type","message":"unknown message type \\"dance\\""/);
sig('SIG-05', 'an unknown type of 10 000 characters (echoed at most 40)', JSON.stringify({ type: 'x'.repeat(10_000) }), /"code":"unknown_type","message":"unknown message type \\"x{40}\\""/);
sig('SIG-06', 'a server message sent by a client (`turn-credentials`)', '{"type":"turn-credentials","urls":["turn:x"],"username":"u","credential":"c","ttl":1}', /"code":"unknown_type","message":"unknown message type \\"turn-credentials\\""/);
sig('SIG-07', '`join` without `room` (fresh connection)', '{"type":"join"}', /"code":"invalid_message","message":"join: \/ must have required property 'room'"/, { joined: false });
sig('SIG-08', '`join` with room `../etc` (fresh connection)', '{"type":"join","room":"../etc"}', /"code":"invalid_message","message":"join: \/room must match pattern/, { joined: false });
sig('SIG-09', 'a second `join` on a joined connection', '{"type":"join","room":"r1"}', /"code":"already_joined"/);
sig('SIG-10', '`offer` before `join` (fresh connection)', '{"type":"offer","sdp":"v=0\\r\\n"}', /"code":"not_joined","message":"join first"/, { joined: false });
sig('SIG-11', '`offer` without `sdp`', '{"type":"offer"}', /"code":"invalid_message","message":"offer: \/ must have required property 'sdp'"/);
sig('SIG-12', '`offer` whose sdp does not start with `v=0`', '{"type":"offer","sdp":"hello"}', /"code":"invalid_message","message":"offer: \/sdp must match pattern/);
sig('SIG-13', '`ice-candidate` with `candidate.candidate` a number', '{"type":"ice-candidate","candidate":{"candidate":5}}', /"code":"invalid_message","message":"ice-candidate: \/candidate\/candidate must be string"/);
sig('SIG-14', '`leave` with an extra field', '{"type":"leave","extra":1}', /"code":"invalid_message","message":"leave: \/ must NOT have additional properties"/);
sig('SIG-15', '`__proto__` carrying the type', '{"__proto__":{"type":"leave"}}', /"code":"invalid_message"/);
{
  const frame = JSON.stringify({ type: 'offer', sdp: `v=0\r\n${'x'.repeat(MAX)}` });
  const size = Buffer.byteLength(frame);
  sig('SIG-16', `an \`offer\` frame of ${size} bytes (limit ${MAX})`, frame, new RegExp(`"code":"too_large","message":"frame of ${size} bytes exceeds ${MAX}"`));
}
sig('SIG-17', 'an empty frame', '', /"code":"bad_json"/);
sig('SIG-18', 'a binary frame of bytes that are not UTF-8 JSON', Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]), /"code":"bad_json","message":"frame is not valid JSON"/);
sig('SIG-19', 'a binary frame carrying a valid `leave` (the protocol is JSON TEXT frames)', Buffer.from('{"type":"leave"}'), /"code":"invalid_message"/);
sig('SIG-25', '`preferred-layer` with layer -1', '{"type":"preferred-layer","peer_id":"0123456789ab","layer":-1}', /"code":"invalid_message","message":"preferred-layer: \/layer must be >= 0"/);
sig('SIG-26', '`preferred-layer` before `join` (fresh connection)', '{"type":"preferred-layer","peer_id":"0123456789ab","layer":1}', /"code":"not_joined","message":"join first"/, { joined: false });

/** A member's WebSocket to room "lobby" through the gateway, the bad frame, and how it ended. */
function sigGateway(id: string, input: string, send: (ws: WebSocket) => void, expect: RegExp) {
  rows.push({
    id, area: 'signaling (gateway proxy)', input, expect, proof: 'gateway store: sha256 of every table, before = after; no frame reached the SFU (nothing echoed back)',
    async run() {
      const before = { store: tableHashes(gwDb), echoed: 0 };
      const ws = new WebSocket(`ws://127.0.0.1:${gwPort}/v1/webrtc/signal?room=lobby`, ['Bearer', MEMBER_TOKEN]);
      let echoed = 0;
      ws.on('message', () => echoed++);
      const closed = new Promise<string>((resolve) => ws.once('close', (code, reason) => resolve(`close ${code} ${reason.toString()}`.trim())));
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      // the gateway buffers until the SFU side is open; the stand-in answers at once
      await new Promise((r) => setTimeout(r, 100));
      send(ws);
      const text = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('still open after 5 s'), 5000))]);
      ws.terminate();
      return { text, before, after: { store: tableHashes(gwDb), echoed }, secrets: GW_SECRETS };
    },
  });
}
sigGateway('SIG-20', `a text frame of ${MAX + 4464} bytes through the gateway`, (ws) => ws.send('x'.repeat(MAX + 4464)), /^close 1009\b/);
sigGateway('SIG-21', `a binary frame of ${MAX + 4464} bytes through the gateway`, (ws) => ws.send(Buffer.alloc(MAX + 4464), { binary: true }), /^close 1009\b/);
sigGateway('SIG-22', 'a text frame that is not UTF-8 (`c3 28`) through the gateway', (ws) => ws.send(Buffer.from([0xc3, 0x28]), { binary: false }), /^close 1007\b/);
/** An upgrade the gateway must refuse: its HTTP status and body, or a failure if it was accepted. */
const refusedUpgrade = (query: string) => gatewayOutcome(() => new Promise((resolve, reject) => {
  const ws = new WebSocket(`ws://127.0.0.1:${gwPort}/v1/webrtc/signal?${query}`, ['Bearer', MEMBER_TOKEN]);
  ws.once('open', () => { ws.terminate(); reject(new Error('the upgrade was accepted')); });
  ws.once('unexpected-response', (_req, res) => {
    let body = '';
    res.on('data', (c) => (body += c));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body: `HTTP ${res.statusCode} ${body}` }));
  });
  ws.once('error', reject);
}));
rows.push({
  id: 'SIG-23', area: 'signaling (gateway proxy)', input: 'upgrade to `?room=..%2Fx` (bad room name)', expect: new RegExp(`HTTP 400 .*querystring/room ${PATTERN}`), status: 400, proof: GW_PROOF,
  run: () => refusedUpgrade('room=..%2Fx'),
});
rows.push({
  id: 'SIG-24', area: 'signaling (gateway proxy)', input: 'a member upgrading to a room that does not exist', expect: /HTTP 404 .*room \\"nosuch\\" does not exist in namespace \\"ns-a\\"/, status: 404, proof: GW_PROOF,
  run: () => refusedUpgrade('room=nosuch'),
});

// ---------------------------------------------------------------------------------------------
// One named test per row

const ids = new Set<string>();
for (const row of rows) {
  if (ids.has(row.id)) throw new Error(`duplicate row id ${row.id}`);
  ids.add(row.id);
  // A todo row still RUNS (tap skips a whole test marked todo): its assertions carry the todo,
  // so they report "not ok … # TODO <the bug>" without failing the file, and "ok" once it is fixed.
  const todo = row.todo ? { todo: row.todo } : {};
  t.test(`${row.id} ${row.area}: ${row.input}${row.todo ? ' [todo: known bug]' : ''}`, async (t) => {
    const o = await row.run(t);
    // (a huge output would be printed whole on a failure: its two ends are what matters)
    const shown = o.text.length > 20_000 ? `${o.text.slice(0, 10_000)}\n… (${o.text.length} chars) …\n${o.text.slice(-10_000)}` : o.text;
    t.match(shown, row.expect, 'the error names what was wrong', todo);
    if (o.exit !== undefined) t.ok(o.exit !== 0 && o.exit !== null, `the command fails (exit ${o.exit})`, todo);
    if (o.status !== undefined) {
      t.ok(o.status >= 400 && o.status < 500, `a 4xx answer, never a 5xx (got ${o.status})`, todo);
      if (row.status !== undefined) t.equal(o.status, row.status, `HTTP ${row.status}`, todo);
    }
    t.notMatch(o.text, STACK, 'no stack trace', todo);
    const leaked = o.secrets.filter((s) => s && (o.text.includes(s) || o.logs?.includes(s))).length;
    t.equal(leaked, 0, 'no secret in the output or the log', todo);
    t.same(o.after, o.before, 'nothing changed', todo);
    if (process.env.BAD_INPUT_REPORT) appendFileSync(process.env.BAD_INPUT_REPORT, JSON.stringify({ id: row.id, area: row.area, input: row.input, text: o.text.slice(0, 600), status: o.status, exit: o.exit, proof: row.proof, todo: row.todo }) + '\n');
  });
}
