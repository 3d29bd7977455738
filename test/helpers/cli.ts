// Runs the real command-line tools (bin/orama-provision.js, bin/orama.js) as an operator would,
// for the integration and end-to-end suites: exit code and output, never throws.
import { execFile } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Run {
  code: number;
  /** stdout + stderr */
  out: string;
  stdout: string;
}

export function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: root, env: { ...process.env, ...env }, maxBuffer: 32 << 20, timeout: 300_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr, stdout });
    });
  });
}

export const provision = (args: string[], env: NodeJS.ProcessEnv = {}) => run('node', [join(root, 'bin', 'orama-provision.js'), ...args], env);
export const orama = (args: string[], env: NodeJS.ProcessEnv = {}) => run('node', [join(root, 'bin', 'orama.js'), ...args], env);

/** Sum of changed= over the PLAY RECAP lines. */
export const recapChanged = (out: string) => [...out.matchAll(/changed=(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
