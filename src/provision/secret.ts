// Secrets are a type: values wrapped in Secret print as (sensitive) wherever the engine
// prints, and every line of output passes the Redactor, which scrubs their plaintext by value
// (so a secret rendered into a template is hidden inside the diff without hiding the diff).
import { Secret, SENSITIVE } from '../secret/secret.ts';

export { Secret, SENSITIVE };

export function isSecret(v: unknown): v is Secret {
  return v instanceof Secret;
}

/** Replaces Secret objects by their plaintext, deeply: what templates and modules see. */
export function reveal(v: unknown, seen?: Set<string>): unknown {
  if (v instanceof Secret) {
    seen?.add(v.reveal());
    return v.reveal();
  }
  if (Array.isArray(v)) return v.map((x) => reveal(x, seen));
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = reveal(x, seen);
    return out;
  }
  return v;
}

export class Redactor {
  #values = new Set<string>();

  /** Registers plaintexts; short values are refused because scrubbing them would shred output. */
  add(value: string): void {
    if (value.length >= 4) this.#values.add(value);
    // A multi-line secret (a PEM private key) shows up line by line in a diff: each of its lines
    // long enough to be material (not "-----END…" framing alone) is scrubbed on its own too.
    if (value.includes('\n')) for (const line of value.split('\n')) if (line.trim().length >= 16) this.#values.add(line.trim());
  }

  collect(v: unknown): void {
    if (v instanceof Secret) this.add(v.reveal());
    else if (Array.isArray(v)) v.forEach((x) => this.collect(x));
    else if (v && typeof v === 'object') Object.values(v).forEach((x) => this.collect(x));
  }

  scrub(text: string): string {
    let out = text;
    // Longest first so a secret containing another is replaced whole.
    for (const s of [...this.#values].sort((a, b) => b.length - a.length)) {
      if (out.includes(s)) out = out.split(s).join(SENSITIVE);
    }
    return out;
  }

  contains(text: string): boolean {
    for (const s of this.#values) if (text.includes(s)) return true;
    return false;
  }

  /** Deep copy with every string scrubbed: for JSON events and plan files. */
  scrubValue<T>(v: T): T {
    if (typeof v === 'string') return this.scrub(v) as T;
    if (v instanceof Secret) return SENSITIVE as T;
    if (Array.isArray(v)) return v.map((x) => this.scrubValue(x)) as T;
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = this.scrubValue(x);
      return out as T;
    }
    return v;
  }
}
