// The module registry: adding a module is one file plus one line here.
import type { Module } from './module.ts';
import copy from './copy.ts';
import template from './template.ts';
import file from './file.ts';
import systemd from './systemd.ts';
import ufw from './ufw.ts';
import apt from './apt.ts';
import waitFor from './wait-for.ts';
import user from './user.ts';
import { command, shell } from './command.ts';
import { stat, slurp } from './stat.ts';
import { setFact, assert, fail, debug } from './control.ts';

export const modules: Record<string, Module> = Object.fromEntries(
  [copy, template, file, systemd, ufw, apt, user, waitFor, command, shell, stat, slurp, setFact, assert, fail, debug].map((m) => [m.name, m as Module]),
);
