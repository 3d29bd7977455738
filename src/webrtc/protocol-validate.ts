// ajv validation of signaling frames. Kept apart from protocol.ts so the browser bundle, which
// imports only the types, never pulls ajv in.
import { Ajv, type ValidateFunction } from 'ajv';
import {
  MAX_MESSAGE_BYTES,
  clientMessageSchemas,
  serverMessageSchemas,
  type ClientMessage,
  type ErrorCode,
  type ServerMessage,
} from './protocol.ts';

const ajv = new Ajv({ allErrors: false, strict: true });

function compileAll<K extends string>(schemas: Record<K, object>): Map<string, ValidateFunction> {
  return new Map(Object.entries(schemas).map(([type, schema]) => [type, ajv.compile(schema as object)]));
}

const clientValidators = compileAll(clientMessageSchemas);
const serverValidators = compileAll(serverMessageSchemas);

export type ParseResult<M> = { ok: true; message: M } | { ok: false; code: ErrorCode; message: string };

function parse<M>(raw: string | Buffer, validators: Map<string, ValidateFunction>): ParseResult<M> {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  if (size > MAX_MESSAGE_BYTES) return { ok: false, code: 'too_large', message: `frame of ${size} bytes exceeds ${MAX_MESSAGE_BYTES}` };
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    return { ok: false, code: 'bad_json', message: 'frame is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as { type?: unknown }).type !== 'string') {
    return { ok: false, code: 'invalid_message', message: 'a message is an object with a string "type"' };
  }
  const type = (value as { type: string }).type;
  const validate = validators.get(type);
  if (!validate) return { ok: false, code: 'unknown_type', message: `unknown message type "${type.slice(0, 40)}"` };
  if (!validate(value)) {
    const e = validate.errors?.[0];
    return { ok: false, code: 'invalid_message', message: `${type}: ${e?.instancePath || '/'} ${e?.message ?? 'invalid'}` };
  }
  return { ok: true, message: value as M };
}

export function parseClientMessage(raw: string | Buffer): ParseResult<ClientMessage> {
  return parse<ClientMessage>(raw, clientValidators);
}

export function parseServerMessage(raw: string | Buffer): ParseResult<ServerMessage> {
  return parse<ServerMessage>(raw, serverValidators);
}
