// GET /health: no credentials needed; 200 when the store answers, 503 otherwise.
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../context.ts';

export async function healthRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.get('/health', {
    schema: {
      response: {
        200: { type: 'object', properties: { status: { type: 'string' }, namespace: { type: 'string' }, store: { type: 'string' } } },
        503: { type: 'object', properties: { status: { type: 'string' }, namespace: { type: 'string' }, store: { type: 'string' } } },
      },
    },
  }, async (_req, reply) => {
    try {
      await ctx.store.ping();
      return { status: 'ok', namespace: ctx.config.namespace, store: ctx.store.driver };
    } catch {
      return reply.code(503).send({ status: 'unavailable', namespace: ctx.config.namespace, store: `${ctx.store.driver} unreachable` });
    }
  });
}
