// Variables, the engine's own part: which layers a host's variables come from (and in which
// order), the magic variables Ansible users expect, `hostvars`, and resolution — variables may
// reference variables, so they are rendered to a fixed point.
import { dirname, resolve as resolvePath } from 'node:path';
import { ProvisionError } from './errors.ts';
import type { Host, Inventory } from './inventory.ts';
import type { Play } from './playbook.ts';
import { reveal } from './secret.ts';
import { isTemplated, renderDeep } from './template.ts';

/** Precedence, low to high: role defaults < all < groups (parents first) < host < play vars (vars_files, vars) < extra vars. */
export function baseVars(o: { inventory: Inventory; host: Host; play: Play; extra: Record<string, unknown>; hostvars: object }): Record<string, unknown> {
  const inv = o.inventory;
  const layers: Record<string, unknown>[] = [
    ...o.play.roles.map((x) => x.defaults),
    ...o.host.groups.map((g) => inv.groupVars(g)),
    o.host.vars,
    o.play.vars,
  ];
  const merged: Record<string, unknown> = Object.assign({}, ...layers);
  const groups: Record<string, string[]> = {};
  for (const g of inv.groups.keys()) groups[g] = [...inv.groupHosts(g)];
  const magic = {
    inventory_hostname: o.host.name,
    ansible_host: o.host.address,
    group_names: o.host.groups.filter((g) => g !== 'all'),
    groups,
    hostvars: o.hostvars,
    playbook_dir: o.play.dir,
    inventory_file: resolvePath(inv.file),
    inventory_dir: dirname(resolvePath(inv.file)),
    // The Node binary running the engine: the runtime role ships this exact build to the nodes.
    controller_node_path: process.execPath,
    controller_cache_dir: process.env.ORAMA_CACHE_DIR ?? '/var/cache/orama-provision',
  };
  return resolveVars({ ...merged, ...magic, ...o.extra });
}

/** `hostvars[name]` as a proxy over `lookup` (a class instance: reveal()/renderDeep() must not flatten it). */
export function hostvarsProxy(lookup: (name: string) => Record<string, unknown> | undefined): object {
  class HostVars {}
  return new Proxy(new HostVars(), {
    get: (_t, name) => (typeof name === 'string' ? reveal(lookup(name)) : undefined),
  });
}

export function hasTemplate(v: unknown): boolean {
  if (typeof v === 'string') return isTemplated(v);
  if (Array.isArray(v)) return v.some(hasTemplate);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v).some(hasTemplate);
  return false;
}

/** Variables may reference variables: render to a fixed point (bounded, cycles are errors). */
export function resolveVars(vars: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...vars };
  for (let pass = 0; pass < 8; pass++) {
    let pendingLeft = false;
    const ctx = reveal(out) as Record<string, unknown>;
    for (const [k, v] of Object.entries(out)) {
      if (!hasTemplate(v)) continue;
      try {
        out[k] = renderDeep(v, ctx);
        if (hasTemplate(out[k])) pendingLeft = true;
      } catch (e) {
        if (pass === 7) throw new ProvisionError(`variable "${k}": ${(e as Error).message}`);
        pendingLeft = true;
      }
    }
    if (!pendingLeft) return out;
  }
  return out;
}
