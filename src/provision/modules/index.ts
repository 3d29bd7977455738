// The module registry: adding a module is one file plus one line here. Tasks may name a module
// as Ansible does today (FQCN: ansible.builtin.copy, ansible.legacy.copy) or by an Ansible alias
// (service, systemd_service → systemd); resolveModule is the one place that maps the names.
import type { Module } from './module.ts';
import copy from './copy.ts';
import template from './template.ts';
import file from './file.ts';
import systemd from './systemd.ts';
import ufw from './ufw.ts';
import apt from './apt.ts';
import waitFor from './wait-for.ts';
import user from './user.ts';
import group from './group.ts';
import { lineinfile, blockinfile, replace } from './lineinfile.ts';
import { command, shell } from './command.ts';
import { stat, slurp } from './stat.ts';
import { setFact, assert, fail, debug } from './control.ts';

export const modules: Record<string, Module> = Object.fromEntries(
  [copy, template, file, systemd, ufw, apt, user, group, lineinfile, blockinfile, replace, waitFor, command, shell, stat, slurp, setFact, assert, fail, debug].map((m) => [m.name, m as Module]),
);

/** Ansible's names for modules we have under another name (their arguments are a subset of ours). */
const ALIASES: Record<string, string> = { service: 'systemd', systemd_service: 'systemd', package: 'apt' };

/** Ansible modules we do not have, or whose arguments differ from ours: refused with what to write instead. */
const REFUSED: Record<string, string> = {
  'community.general.ufw': 'its rule/port/from_ip/delete arguments are not supported; write `ufw: { set: NAME, rules: [{ port, proto, from, to, interface }] }` — a desired set of rules (docs/engine.md)',
  get_url: 'is not supported; put the file in the role\'s files/ and use `copy: { src: NAME, dest: … }` (the plan then shows its checksum), or `command: { cmd: "curl -fsSo DEST URL", creates: DEST }`',
  unarchive: 'is not supported; use `copy` for the archive and `command: { cmd: "tar -xf ARCHIVE -C DIR", creates: DIR/SOME_FILE }`',
};

const PREFIXES = ['ansible.builtin.', 'ansible.legacy.'];

/** A task key → the module it names, or why it names none (undefined: not a module name at all). */
export function resolveModule(key: string): { name: string } | { refused: string } | undefined {
  const short = PREFIXES.reduce((k, p) => (k.startsWith(p) ? k.slice(p.length) : k), key);
  const refused = REFUSED[key] ?? REFUSED[short];
  if (refused) return { refused: `module "${key}"${refused.startsWith('is ') ? ' ' : ': '}${refused}` };
  const name = ALIASES[short] ?? short;
  if (short !== key && !modules[name]) return undefined;
  return modules[name] ? { name } : undefined;
}
