// Every error the gateway answers is { error: <code>, message } with the right status; fastify's
// own validation errors become 400 naming the field ("body/room_id must match pattern …").
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { StoreError } from '../store/store.ts';

export class HttpError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
  }
}

const CODES: Record<number, string> = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed',
  409: 'conflict', 413: 'payload_too_large', 415: 'unsupported_media_type', 429: 'rate_limited',
  502: 'bad_gateway', 503: 'unavailable',
};

export function errorHandler(err: FastifyError | HttpError, req: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof HttpError) {
    for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
    reply.code(err.statusCode).send({ error: err.code, message: err.message });
    return;
  }
  if (err instanceof StoreError) {
    const status = err.code === 'invalid' ? 400 : err.code === 'conflict' ? 409 : 503;
    if (status === 503) req.log.error({ err: { type: err.name, message: err.message } }, 'store unavailable');
    reply.code(status).send({ error: CODES[status], message: status === 503 ? 'state store unavailable, retry shortly' : err.message });
    return;
  }
  const fe = err as FastifyError;
  if (fe.validation) {
    // ajv says "must NOT have additional properties" without the name: add it.
    const extra = fe.validation.map((v) => (v.params as { additionalProperty?: string })?.additionalProperty).filter(Boolean);
    reply.code(400).send({ error: 'bad_request', message: extra.length ? `${fe.message}: ${extra.map((x) => `"${String(x).slice(0, 64)}"`).join(', ')}` : fe.message });
    return;
  }
  const status = fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
  if (status === 500) {
    req.log.error({ err: { type: err.name, message: err.message, stack: err.stack } }, 'request failed');
    reply.code(500).send({ error: 'internal', message: 'internal error (see the gateway log)' });
    return;
  }
  reply.code(status).send({ error: CODES[status] ?? 'error', message: fe.message });
}
