// Which cgroup layout this host has, and what the node launcher needs for it. Debian 12 hosts
// with systemd as PID 1 boot the unified (v2) layout by default; this machine is hybrid (v1
// "systemd" + v2 "unified"); old hosts are legacy (v1 only). Each node's launcher puts itself in a
// cgroup of its own in every hierarchy there is; nspawn runs the node in the host's layout.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export type CgroupMode = 'unified' | 'hybrid' | 'legacy';

/** unified: /sys/fs/cgroup is itself cgroup2 (it has cgroup.controllers); hybrid: v1 plus a v2 "unified" mount. */
export function detectCgroupMode(root = '/sys/fs/cgroup', exists: (p: string) => boolean = existsSync): CgroupMode {
  if (exists(join(root, 'cgroup.controllers'))) return 'unified';
  if (exists(join(root, 'unified'))) return 'hybrid';
  if (exists(join(root, 'systemd'))) return 'legacy';
  throw new Error(`no cgroup hierarchy found under ${root} (neither cgroup2 nor a named systemd hierarchy)`);
}

/** The hierarchies a node's launcher must enter and its cgroups be removed from. */
export function cgroupHierarchies(mode: CgroupMode, root = '/sys/fs/cgroup'): string[] {
  if (mode === 'unified') return [root];
  if (mode === 'hybrid') return [join(root, 'systemd'), join(root, 'unified')];
  return [join(root, 'systemd')];
}

/**
 * The launcher's environment: the hierarchies to enter (OTC_CGROUP_DIRS). The layout nspawn gives
 * the node is left to nspawn, which follows the host's (unified → unified, hybrid → hybrid);
 * setting SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0 would force legacy, not hybrid.
 */
export function launcherEnv(mode: CgroupMode, root = '/sys/fs/cgroup'): Record<string, string> {
  return { OTC_CGROUP_DIRS: cgroupHierarchies(mode, root).join(' ') };
}
