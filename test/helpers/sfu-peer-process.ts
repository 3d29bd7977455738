// Drives one sfu-wrtc-peer.ts process (inside a namespace) from a test: collects its JSON-line
// events, sends commands, waits for conditions with a deadline.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TSX_NODE, type NetnsLab } from './sfu-netns.ts';

export interface PeerEvent {
  event: string;
  t: number;
  [key: string]: unknown;
}

export class PeerProcess {
  readonly events: PeerEvent[] = [];
  private readonly proc: ChildProcess;
  private nextId = 1;
  private waiters: (() => void)[] = [];

  constructor(lab: NetnsLab, nsName: string, readonly name: string, options: Record<string, unknown>) {
    this.proc = lab.spawnIn(nsName, name, [...TSX_NODE, 'test/helpers/sfu-wrtc-peer.ts', JSON.stringify({ name, ...options })], { stdio: 'pipe' });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as PeerEvent);
      } catch {
        this.events.push({ event: 'stdout', t: Date.now(), line });
      }
      this.waiters.splice(0).forEach((w) => w());
    });
    this.proc.on('exit', () => this.waiters.splice(0).forEach((w) => w()));
  }

  /** The peer's node process (`ip netns exec` execs it: same pid). */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  find(event: string, pred: (e: PeerEvent) => boolean = () => true): PeerEvent | undefined {
    return this.events.find((e) => e.event === event && pred(e));
  }

  async waitFor(event: string, pred: (e: PeerEvent) => boolean = () => true, timeoutMs = 15000): Promise<PeerEvent> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.find(event, pred);
      if (hit) return hit;
      const fatal = this.find('fatal');
      if (fatal) throw new Error(`${this.name}: ${fatal.message}`);
      if (this.exited) throw new Error(`${this.name} exited while waiting for ${event}`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no "${event}" within ${timeoutMs} ms; last events: ${JSON.stringify(this.events.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async command(cmd: string, fields: Record<string, unknown> = {}, reply = cmd === 'stats' ? 'stats' : cmd === 'send' ? 'sent' : 'left'): Promise<PeerEvent> {
    const id = this.nextId++;
    this.proc.stdin!.write(JSON.stringify({ cmd, id, ...fields }) + '\n');
    return this.waitFor(reply, (e) => e.id === id, 10000);
  }

  /** Polls stats until pred holds. */
  async waitStats(pred: (s: PeerEvent) => boolean, timeoutMs = 15000): Promise<PeerEvent> {
    const until = Date.now() + timeoutMs;
    let last: PeerEvent | undefined;
    while (Date.now() < until) {
      last = await this.command('stats');
      if (pred(last)) return last;
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error(`${this.name}: stats condition not met in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
  }

  async leave(): Promise<void> {
    if (this.exited) return;
    await this.command('leave').catch(() => {});
  }
}
