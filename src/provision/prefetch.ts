// Fact prefetch: the read-only fact scripts of a host's coming tasks run in ONE round trip, and a
// task whose fact script is already answered uses the answer instead of asking the host again.
// A no-op apply or a plan then costs a few round trips per host instead of one per task.
//
// It can never change a plan: answers are keyed by the exact script, stdin and privilege, so a
// task whose arguments came out differently at its turn simply asks the host; and every command
// that may change the host (any exec that is not a fact script) drops all answers first.
import { shellQuote, type ExecOptions, type ExecResult, type Transport } from './transport/transport.ts';

export interface FactRequest {
  script: string;
  stdin?: string | Buffer;
  become: boolean;
}

/** Larger scripts or inputs are not batched: a batch is for small looks. */
const MAX_SCRIPT_BYTES = 64 * 1024;
/** A batch that takes longer is dropped; its tasks then ask one by one, each with its own timeout. */
const BATCH_TIMEOUT_MS = 60_000;

const keyOf = (script: string, stdin: string | Buffer | undefined, become: boolean) => `${become ? 1 : 0}\0${script}\0${stdin ? Buffer.from(stdin).toString('base64') : ''}`;

export class Prefetch {
  #answers = new Map<string, ExecResult>();
  /** Bumped whenever the answers are dropped: the runner prefetches again after it. */
  generation = 0;
  /** Round trips and answers used, for `--verbose` and the benchmark's breakdown. */
  stats = { batches: 0, batched: 0, hits: 0 };

  constructor(private transport: Transport, public enabled = true) {}

  /** A command that may change the host: every answer so far may be stale. */
  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.invalidate();
    return this.transport.exec(script, opts);
  }

  /** A read-only fact script: answered from the batch when it was in one. */
  factExec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const hit = this.#answers.get(keyOf(script, opts.stdin, opts.become ?? false));
    if (hit) {
      this.stats.hits++;
      return Promise.resolve(hit);
    }
    return this.transport.exec(script, opts);
  }

  invalidate() {
    if (this.#answers.size) this.#answers.clear();
    this.generation++;
  }

  /** Runs the requests not answered yet, one batch per privilege level. A failed batch is ignored. */
  async fetch(requests: FactRequest[]): Promise<void> {
    if (!this.enabled) return;
    const todo = new Map<string, FactRequest>();
    for (const r of requests) {
      const k = keyOf(r.script, r.stdin, r.become);
      if (!this.#answers.has(k) && Buffer.byteLength(r.script) <= MAX_SCRIPT_BYTES && Buffer.byteLength(r.stdin ?? '') <= MAX_SCRIPT_BYTES) todo.set(k, r);
    }
    for (const become of [false, true]) {
      const batch = [...todo].filter(([, r]) => r.become === become);
      if (batch.length < 2) continue; // one script alone gains nothing from a batch
      const generation = this.generation;
      const r = await this.transport.exec(batchScript(batch.map(([, x]) => x)), { become, timeoutMs: BATCH_TIMEOUT_MS });
      const results = r.code === 0 ? parseBatch(r.stdout, batch.length) : undefined;
      // Something changed the host while the batch ran (another task of this host cannot, but be safe).
      if (!results || generation !== this.generation) continue;
      this.stats.batches++;
      this.stats.batched += batch.length;
      batch.forEach(([k], i) => this.#answers.set(k, results[i]));
    }
  }
}

/**
 * One script that runs each request in its own subshell (as the session would: same shell, same
 * directory, its own stdin; a script that does not parse fails the batch, and its tasks then ask
 * one by one) and prints: the exit codes, the byte sizes of every stdout/stderr,
 * then all of them concatenated, base64 — so any bytes come back exactly.
 */
export function batchScript(requests: FactRequest[]): string {
  const lines = ['B=$(mktemp -d /tmp/.orama-batch-XXXXXX) || exit 1', `trap 'rm -rf "$B"' EXIT`];
  const outputs: string[] = [];
  requests.forEach((r, i) => {
    const input = r.stdin ? `printf %s ${shellQuote(Buffer.from(r.stdin).toString('base64'))} | base64 -d > "$B/i${i}"; ` : '';
    const from = r.stdin ? `"$B/i${i}"` : '/dev/null';
    // A subshell, not `sh -c`: no exec per script, and `exit` ends only its own script.
    lines.push(`${input}(`, r.script, `) < ${from} > "$B/o${i}" 2> "$B/e${i}"; echo $? >> "$B/rc"`);
    outputs.push(`"$B/o${i}"`, `"$B/e${i}"`);
  });
  lines.push('cat "$B/rc"', 'echo ---', `wc -c ${outputs.join(' ')}`, 'echo ---', `cat ${outputs.join(' ')} | base64 -w0`, 'echo');
  return lines.join('\n');
}

export function parseBatch(stdout: string, n: number): ExecResult[] | undefined {
  const [rcs, sizes, b64] = stdout.split('\n---\n');
  if (b64 === undefined) return undefined;
  const codes = rcs.trim().split('\n').map(Number);
  const lens = sizes.trim().split('\n').slice(0, 2 * n).map((l) => Number(l.trim().split(/\s+/)[0]));
  if (codes.length !== n || lens.length !== 2 * n || [...codes, ...lens].some((x) => !Number.isInteger(x))) return undefined;
  const all = Buffer.from(b64.trim(), 'base64');
  if (all.length !== lens.reduce((a, b) => a + b, 0)) return undefined;
  const out: ExecResult[] = [];
  let at = 0;
  const take = (len: number) => all.subarray(at, (at += len)).toString('utf8');
  for (let i = 0; i < n; i++) out.push({ code: codes[i], stdout: take(lens[2 * i]), stderr: take(lens[2 * i + 1]) });
  return out;
}
