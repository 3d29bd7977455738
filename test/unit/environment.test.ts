// `--env NAME`: inventory, operator store and base domain from inventory/environments/NAME.yml;
// flags win, then the file, then ORAMA_* variables, then `local`. Bad names and files are clear
// errors that name the file, key or the known environments.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeEnvironment, knownEnvironments, loadEnvironment, resolveEnvironment } from '../../src/cli/environment.ts';
import { orama } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { described } from '../helpers/described.ts';
import { baseDomainProblem } from '../../src/webrtc/names.ts';
import { clusterConfig } from '../../src/cluster/config.ts';


t.test('the repository ships local (the default) and vagrant', async (t) => {
  t.ok(knownEnvironments().includes('local') && knownEnvironments().includes('vagrant'));
  const local = loadEnvironment('local');
  t.match(local, { name: 'local', state: '/var/lib/orama/state.db', baseDomain: 'orama.test' });
  t.match(local.inventory, /\/inventory\/test-cluster\.yml$/, 'relative to the environment file');
});

t.test('precedence: flag, --env file, ORAMA_*, local', async (t) => {
  const dir = join(tempDir(t, 'envs-'), 'environments');
  mkdirSync(dir);
  writeFileSync(join(dir, 'local.yml'), 'inventory: /inv/local.yml\nstate: /s/local.db\nbase_domain: local.test\n');
  writeFileSync(join(dir, 'devnet.yml'), 'inventory: ../devnet.yml\nstate: http://10.0.0.1:4001,http://10.0.0.2:4001\nbase_domain: devnet.example\n');
  const saved = { ...process.env };
  t.teardown(() => void (process.env = saved));
  delete process.env.ORAMA_INVENTORY;
  delete process.env.ORAMA_STATE;
  delete process.env.ORAMA_BASE_DOMAIN;
  t.match(resolveEnvironment({}, dir), { name: 'local', inventory: '/inv/local.yml', state: '/s/local.db', baseDomain: 'local.test' }, 'no flags: local');
  t.match(resolveEnvironment({ env: 'devnet' }, dir), { name: 'devnet', inventory: join(dir, '..', 'devnet.yml'), state: 'http://10.0.0.1:4001,http://10.0.0.2:4001', baseDomain: 'devnet.example' }, 'a URL state stays a URL');
  process.env.ORAMA_STATE = '/s/from-env.db';
  t.equal(resolveEnvironment({}, dir).state, '/s/from-env.db', 'ORAMA_STATE over local');
  t.equal(resolveEnvironment({ env: 'devnet' }, dir).state, 'http://10.0.0.1:4001,http://10.0.0.2:4001', 'an explicit --env over ORAMA_STATE');
  t.equal(resolveEnvironment({ env: 'devnet', state: '/s/flag.db' }, dir).state, '/s/flag.db', 'a flag over everything');
  t.equal(describeEnvironment(resolveEnvironment({ env: 'devnet', state: '/s/flag.db' }, dir)), 'devnet (state from the command line)', 'a report says what overrode the environment');
  t.equal(describeEnvironment(resolveEnvironment({}, dir)), 'local (state from ORAMA_STATE)');
});

t.test('bad environments say what is wrong', async (t) => {
  const dir = join(tempDir(t, 'envs-'), 'environments');
  mkdirSync(dir);
  writeFileSync(join(dir, 'local.yml'), 'inventory: a.yml\nstate: s.db\nbase_domain: x.test\n');
  writeFileSync(join(dir, 'typo.yml'), 'inventory: a.yml\nstate: s.db\nbase_domian: x.test\n');
  writeFileSync(join(dir, 'empty.yml'), 'inventory: ""\nstate: s.db\nbase_domain: x.test\n');
  t.match(described(() => loadEnvironment('devnet', dir)), /--env "devnet": no such environment \(known: empty, local, typo;/);
  t.match(described(() => loadEnvironment('Dev Net', dir)), /lowercase letters, digits and dashes/);
  t.match(described(() => loadEnvironment('typo', dir)), /typo\.yml:3:1.*unknown key "base_domian" \(an environment has inventory, state, base_domain\)/);
  t.match(described(() => loadEnvironment('empty', dir)), /empty\.yml:1:\d+.*"inventory" must be a non-empty string/);
  writeFileSync(join(dir, 'ftp.yml'), 'inventory: a.yml\nstate: ftp://store\nbase_domain: x.test\n');
  t.equal(described(() => loadEnvironment('ftp', dir)), `${join(dir, 'ftp.yml')}:2:1, key "state": "state" "ftp://store": ftp: is no store's URL scheme; the operator store is a SQLite file path or http(s):// rqlite URL(s)`);
});

t.test('every orama command takes --env; an unknown one changes nothing and lists the known', async (t) => {
  for (const args of [['namespace', 'enable', 'webrtc', '--namespace', 'x', '--env', 'nope'], ['namespace', 'webrtc-status', '--namespace', 'x', '--env', 'nope'], ['apikey', 'list', '--namespace', 'x', '--env', 'nope']]) {
    const r = await orama(args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.out, /--env "nope": no such environment \(known: local, vagrant/, args.slice(0, 2).join(' '));
  }
});

t.test('the base domain is a DNS name: one rule (names.ts) wherever it comes from', async (t) => {
  for (const ok of ['orama.test', 'devnet.orama.network', 'xn--bcher-kva.example', 'a-b.c1', `${'x'.repeat(63)}.test`]) t.equal(baseDomainProblem(ok), undefined, `${ok} is fine`);
  const bad: [string, string][] = [
    ['', 'empty'],
    ['not a domain', 'the label "not a domain" holds characters other than a-z, 0-9 and -'],
    ['a_b.test', 'the label "a_b" holds characters other than a-z, 0-9 and -'],
    ['Orama.Test', 'not lowercase (write "orama.test")'],
    ['orama', 'a single label; a base domain has at least two (like example.org)'],
    ['-a.test', 'the label "-a" begins or ends with a dash'],
    ['a.test-', 'the label "test-" begins or ends with a dash'],
    ['a..test', 'an empty label (two dots in a row, or a dot at an end)'],
    ['orama.test.', 'an empty label (two dots in a row, or a dot at an end)'],
    [`${'x'.repeat(64)}.test`, `the label "${'x'.repeat(20)}…" is 64 characters long; a label has at most 63`],
    [Array(128).fill('ab').join('.'), '383 characters long; a DNS name has at most 253'],
  ];
  for (const [d, why] of bad) t.equal(baseDomainProblem(d), why, JSON.stringify(d.length > 30 ? d.slice(0, 30) + '…' : d));
  t.equal(baseDomainProblem(Array(127).fill('a').join('.')), undefined, '253 characters in all is the most');

  const dir = join(tempDir(t, 'envs-'), 'environments');
  mkdirSync(dir);
  writeFileSync(join(dir, 'local.yml'), 'inventory: /inv/local.yml\nstate: /s/local.db\nbase_domain: local.test\n');
  writeFileSync(join(dir, 'spaced.yml'), 'inventory: a.yml\nstate: s.db\nbase_domain: not a domain\n');
  const saved = { ...process.env };
  t.teardown(() => void (process.env = saved));
  delete process.env.ORAMA_BASE_DOMAIN;
  t.equal(described(() => resolveEnvironment({ baseDomain: 'not a domain' }, dir)), '--base-domain "not a domain": not a DNS name: the label "not a domain" holds characters other than a-z, 0-9 and -', 'the flag');
  t.equal(described(() => loadEnvironment('spaced', dir)), `${join(dir, 'spaced.yml')}:3:1, key "base_domain": "base_domain" "not a domain": not a DNS name: the label "not a domain" holds characters other than a-z, 0-9 and -`, "an environment's file and line");
  process.env.ORAMA_BASE_DOMAIN = 'Orama.Test';
  t.equal(described(() => resolveEnvironment({}, dir)), 'ORAMA_BASE_DOMAIN "Orama.Test": not a DNS name: not lowercase (write "orama.test")', 'the variable');
  t.equal(resolveEnvironment({ baseDomain: 'ok.test' }, dir).baseDomain, 'ok.test', 'a good flag over a bad variable');
  process.env.ORAMA_CLUSTER_BASE_DOMAIN = 'orama';
  t.throws(() => clusterConfig({ name: 'default' }), { message: 'ORAMA_CLUSTER_BASE_DOMAIN "orama": not a DNS name: a single label; a base domain has at least two (like example.org)' }, "the test cluster's");
});
