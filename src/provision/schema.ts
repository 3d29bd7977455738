// JSON Schema validation (ajv) with errors that point into the YAML source.
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { ProvisionError } from './errors.ts';
import { placeOf, placeOfPath } from './source.ts';

export const ajv = new Ajv.default({ allErrors: false, strict: false, allowUnionTypes: true });

const compiled = new WeakMap<object, ValidateFunction>();

function describe(err: ErrorObject): { message: string; key?: string } {
  const p = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties':
      return { message: `unknown key "${p.additionalProperty}"`, key: String(p.additionalProperty) };
    case 'required':
      return { message: `missing required key "${p.missingProperty}"`, key: String(p.missingProperty) };
    case 'enum':
      return { message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'type':
      return { message: `must be ${p.type}` };
    default:
      return { message: err.message ?? err.keyword };
  }
}

/** Throws a ProvisionError naming file:line:col, the key, and what was expected. */
export function validate(schema: object, value: unknown, what: string, ctx: { host?: string; task?: string } = {}): void {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  if (fn(value)) return;
  throw schemaError(fn.errors![0], value, what, ctx);
}

export function schemaError(err: ErrorObject, value: unknown, what: string, ctx: { host?: string; task?: string } = {}): ProvisionError {
  const path = err.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const d = describe(err);
  let place = placeOfPath(value, path);
  if (d.key) {
    // Point at the offending key itself (unknown key), or at the mapping missing it.
    const parent = path.reduce((o: any, k) => (o == null ? o : o[k]), value);
    place = placeOf(parent, d.key) ?? place;
  }
  const at = path.length ? `"${path.join('.')}" ` : '';
  return new ProvisionError(`${what}: ${at}${d.message}`, place, { ...ctx, key: (d.key ?? path.at(-1)) as string | undefined });
}
