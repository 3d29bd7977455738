// A secret read from the store (TURN shared secret, JWT signing key): its printed form is
// [REDACTED] in logs, JSON and util.inspect, so passing a config object to a logger cannot leak it.
import { inspect } from 'node:util';

export const REDACTED = '[REDACTED]';

export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = String(value);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}
