// How the engine reaches a host: one open connection, many commands. Modules see only this.
import type { Host } from '../inventory.ts';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  stdin?: string | Buffer;
  become?: boolean;
  timeoutMs?: number;
}

export interface Transport {
  readonly host: Host;
  connect(): Promise<void>;
  /** Runs a POSIX sh script on the host. */
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
}

/** The host could not be reached or authenticated: Ansible's "unreachable". */
export class UnreachableError extends Error {
  constructor(public host: string, message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

export function shellQuote(s: string): string {
  if (s === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Wraps a script for `become` (sudo -n: never prompt; a missing sudo rule is an error, not a hang). */
export function withBecome(script: string, become: boolean, user: string): string {
  const inner = `sh -c ${shellQuote(script)}`;
  return become && user !== 'root' ? `sudo -n ${inner}` : inner;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 300_000;
