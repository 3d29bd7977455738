// A secret (TURN shared secret, JWT key, internal key, API key): the one type every part uses.
// Its printed forms — String(), JSON, util.inspect — are "(sensitive)", so handing a config
// object to a logger, a plan or an error message cannot leak it. Only reveal() gives the value.
import { inspect } from 'node:util';

export const SENSITIVE = '(sensitive)';

export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = String(value);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return SENSITIVE;
  }
  toJSON(): string {
    return SENSITIVE;
  }
  [inspect.custom](): string {
    return SENSITIVE;
  }
}
