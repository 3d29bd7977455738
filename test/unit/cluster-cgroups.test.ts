// The test cluster on both cgroup layouts: which one the host has, which hierarchies a node's
// launcher enters, and that the launcher script really uses them (run on a fake cgroup tree).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cgroupHierarchies, detectCgroupMode, launcherEnv } from '../../src/cluster/cgroups.ts';

const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cluster', 'launcher.sh');

t.test('the host layout decides the hierarchies', async (t) => {
  const has = (...paths: string[]) => (p: string) => paths.includes(p);
  t.equal(detectCgroupMode('/c', has('/c/cgroup.controllers')), 'unified', 'stock Debian 12 with systemd: cgroup2 at the root');
  t.equal(detectCgroupMode('/c', has('/c/systemd', '/c/unified')), 'hybrid', 'this machine: v1 systemd + v2 unified');
  t.equal(detectCgroupMode('/c', has('/c/systemd')), 'legacy');
  t.throws(() => detectCgroupMode('/c', has()), /no cgroup hierarchy found under \/c/);
  t.same(cgroupHierarchies('unified', '/c'), ['/c']);
  t.same(cgroupHierarchies('hybrid', '/c'), ['/c/systemd', '/c/unified']);
  t.same(launcherEnv('unified', '/c'), { OTC_CGROUP_DIRS: '/c' });
  t.same(launcherEnv('hybrid', '/c'), { OTC_CGROUP_DIRS: '/c/systemd /c/unified' });
  t.ok(['unified', 'hybrid', 'legacy'].includes(detectCgroupMode()), `and this host has one of them (${detectCgroupMode()})`);
});

for (const mode of ['unified', 'hybrid'] as const) {
  t.test(`the launcher enters its own cgroup in every ${mode} hierarchy (a fake tree, a stand-in for nspawn)`, async (t) => {
    const root = mkdtempSync(join(tmpdir(), `cgroups-${mode}-`));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const dirs = cgroupHierarchies(mode, join(root, 'fs'));
    for (const d of dirs) mkdirSync(d, { recursive: true });
    const node = join(root, 'node');
    mkdirSync(node);
    // The launcher runs `systemd-nspawn "$@"`: a stand-in on PATH that exits 0 at once (booting a
    // real node here would need root and an image; the cluster suites do that on this host's layout).
    const bin = join(root, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'systemd-nspawn'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    execFileSync('/bin/bash', [LAUNCHER, node, 'otc-test-node1', '--', '--boot'], { env: { ...process.env, ...launcherEnv(mode, join(root, 'fs')), PATH: `${bin}:${process.env.PATH}` } });
    for (const d of dirs) {
      t.ok(existsSync(join(d, 'otc-test-node1')), `${d}/otc-test-node1 created`);
      t.match(readFileSync(join(d, 'otc-test-node1', 'cgroup.procs'), 'utf8'), /^\d+\n$/, 'the launcher wrote its PID into it');
    }
    t.notOk(existsSync(join(node, 'launcher.pid')), 'and removed its pidfile when nspawn ended');
  });
}

t.test('the launcher refuses to start without its hierarchies', async (t) => {
  const env = { ...process.env };
  delete env.OTC_CGROUP_DIRS;
  const dir = mkdtempSync(join(tmpdir(), 'cgroups-none-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.throws(() => execFileSync('/bin/bash', [LAUNCHER, dir, 'x', '--'], { env, stdio: 'pipe' }), /OTC_CGROUP_DIRS is not set/);
});
