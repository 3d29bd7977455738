// One persistent ssh2 connection per host; every command is an exec channel on it.
import { Client, type ConnectConfig } from 'ssh2';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { portNumber, type Host } from '../inventory.ts';
import { checkHostKey } from './known-hosts.ts';
import { ShellSession } from './session.ts';
import { DEFAULT_COMMAND_TIMEOUT_MS, UnreachableError, withBecome, type ExecOptions, type ExecResult, type Transport } from './transport.ts';

export interface SshOptions {
  acceptNewHostKeys?: boolean;
  connectTimeoutMs?: number;
}

/** Payloads above this go through their own exec channel instead of the framed session. */
const SESSION_MAX_STDIN = 512 * 1024;

export class SshTransport implements Transport {
  #client?: Client;
  #connecting?: Promise<void>;
  /** Why the connection went after it was up (a keepalive timeout: the host vanished). */
  #lost?: string;
  #sessions = new Map<boolean, Promise<ShellSession>>();

  constructor(readonly host: Host, private opts: SshOptions = {}) {}

  connect(): Promise<void> {
    this.#connecting ??= this.#open();
    return this.#connecting;
  }

  #open(): Promise<void> {
    const h = this.host;
    const knownHosts = h.knownHosts ?? join(homedir(), '.ssh', 'known_hosts');
    let keyProblem: string | undefined;
    const config: ConnectConfig = {
      host: h.address,
      port: h.port,
      username: h.user,
      readyTimeout: this.opts.connectTimeoutMs ?? 10_000,
      // A host that vanishes mid-run (power, network) sends nothing more: three unanswered
      // keepalives, 5 s apart, and it is unreachable (about 15-20 s) instead of a hung run.
      keepaliveInterval: 5_000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        const r = checkHostKey(knownHosts, h.address, h.port, key, this.opts.acceptNewHostKeys ?? false);
        if (!r.ok) keyProblem = r.reason;
        return r.ok;
      },
    };
    if (h.key) {
      try {
        config.privateKey = readFileSync(h.key);
      } catch (e) {
        return Promise.reject(new UnreachableError(h.name, `cannot read ssh key ${h.key}: ${(e as NodeJS.ErrnoException).code}`));
      }
    } else if (process.env.SSH_AUTH_SOCK) config.agent = process.env.SSH_AUTH_SOCK;
    const where = `ssh ${h.user}@${h.address}:${h.port}`;
    // The inventory checks ports; a Host made elsewhere is checked here, before ssh2 sees it.
    if (portNumber(h.port) === undefined) return Promise.reject(new UnreachableError(h.name, `${where}: the port is not a port number (an integer from 1 to 65535)`));
    return new Promise((resolve, reject) => {
      const c = new Client();
      let ready = false;
      c.on('ready', () => {
        ready = true;
        // Nagle would hold each small request behind the window adjust sent before it until
        // the node's delayed ACK (~40 ms): every command would cost 40 ms more than its work.
        c.setNoDelay(true);
        this.#client = c;
        resolve();
      });
      c.on('close', () => { if (ready) this.#lost ??= 'connection closed'; });
      c.on('error', (e) => {
        if (ready) { this.#lost = e.message; return; }
        const why = keyProblem ?? `${e.message}${(e as any).level === 'client-authentication' ? ` (user ${h.user}, key ${h.key ?? 'agent'})` : ''}`;
        // A client that never got ready is never closed by close() (#client is unset): its socket goes now.
        if (!ready) c.destroy();
        reject(new UnreachableError(h.name, `${where}: ${why}`));
      });
      try {
        c.connect(config);
      } catch (e) {
        // connect() starts its handshake timer (readyTimeout) before it opens the socket: when
        // opening throws (a bad port, say), the timer would keep the process alive for its 10 s.
        // Destroying the socket ends the timer with it.
        c.destroy();
        reject(new UnreachableError(h.name, `${where}: ${(e as Error).message}`));
      }
    });
  }

  /** One persistent shell per privilege level (plain, or through sudo for `become`). */
  #session(become: boolean): Promise<ShellSession> {
    let s = this.#sessions.get(become);
    if (!s) {
      s = new Promise<ShellSession>((resolve, reject) => {
        const shell = become && this.host.user !== 'root' ? 'sudo -n sh' : 'sh';
        this.#client!.exec(shell, (err, channel) => {
          if (err) return reject(new UnreachableError(this.host.name, `ssh session on ${this.host.address}: ${err.message}`));
          resolve(new ShellSession(channel, () => this.#sessions.delete(become)));
        });
      });
      this.#sessions.set(become, s);
    }
    return s;
  }

  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    await this.connect();
    const become = opts.become ?? false;
    try {
      if (this.#lost) throw new Error('connection lost');
      if (!opts.stdin || Buffer.byteLength(opts.stdin) <= SESSION_MAX_STDIN) {
        const session = await this.#session(become);
        if (!session.closed) return await session.exec(script, opts.stdin, opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
      }
      return await this.#execChannel(script, opts);
    } catch (e) {
      // The session's channel closes a moment before the client reports why: let it.
      await new Promise((r) => setImmediate(r));
      if (this.#lost && !(e instanceof UnreachableError)) {
        throw new UnreachableError(this.host.name, `ssh ${this.host.user}@${this.host.address}:${this.host.port}: connection lost while a command ran (${this.#lost})`);
      }
      throw e;
    }
  }

  #execChannel(script: string, opts: ExecOptions): Promise<ExecResult> {
    const c = this.#client!;
    const cmd = withBecome(script, opts.become ?? false, this.host.user);
    return new Promise((resolve, reject) => {
      c.exec(cmd, (err, stream) => {
        if (err) return reject(new UnreachableError(this.host.name, `ssh exec on ${this.host.address}: ${err.message}`));
        const out: Buffer[] = [];
        const errb: Buffer[] = [];
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          stream.close();
        }, opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errb.push(d));
        stream.on('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({
            code: timedOut ? 124 : code ?? 255,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(errb).toString('utf8') + (timedOut ? `\n(command timed out after ${opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS} ms)` : ''),
          });
        });
        stream.end(opts.stdin ?? '');
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sessions.values()) (await s.catch(() => undefined))?.close();
    this.#sessions.clear();
    this.#client?.end();
    this.#client = undefined;
  }
}
