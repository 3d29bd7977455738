// What an operator would read for a failure: a ProvisionError's full description (file:line,
// host, task, key, message), another error's text, or 'no error'.
import { ProvisionError } from '../../src/provision/errors.ts';

export const described = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return e instanceof ProvisionError ? e.describe() : String(e);
  }
  return 'no error';
};
