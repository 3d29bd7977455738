// The `local` connection: commands run on the controller itself (inventory `connection: local`).
import { spawn } from 'node:child_process';
import { userInfo } from 'node:os';
import type { Host } from '../inventory.ts';
import { DEFAULT_COMMAND_TIMEOUT_MS, withBecome, type ExecOptions, type ExecResult, type Transport } from './transport.ts';

export class LocalTransport implements Transport {
  constructor(readonly host: Host) {}

  async connect(): Promise<void> {}

  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const cmd = withBecome(script, opts.become ?? false, userInfo().username);
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
      child.stdout.on('data', (d) => out.push(d));
      child.stderr.on('data', (d) => err.push(d));
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          code: code ?? (signal ? 124 : 1),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8') + (signal ? `\n(command killed: ${signal}, timeout)` : ''),
        });
      });
      child.stdin.on('error', () => {});
      child.stdin.end(opts.stdin ?? '');
    });
  }

  async close(): Promise<void> {}
}
