// POST /v1/webrtc/turn/credentials → { urls, username, credential, ttl } (TURN REST API scheme,
// src/webrtc/credentials.ts). The namespace's TURN secret is read from the store and reused for
// storeCacheMs; it never leaves this process except as the HMAC.
import type { FastifyInstance } from 'fastify';
import { credentialIssuer } from '../../webrtc/credentials.ts';
import type { WebrtcConfig } from '../../store/store.ts';
import type { GatewayContext } from '../context.ts';
import { requirePrincipal } from '../auth.ts';
import { HttpError } from '../errors.ts';

export async function credentialsRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const issue = credentialIssuer();
  let cached: { at: number; value: Promise<WebrtcConfig | null> } | null = null;
  const webrtcConfig = (): Promise<WebrtcConfig | null> => {
    if (!cached || Date.now() - cached.at >= ctx.config.storeCacheMs) {
      const value = ctx.store.getWebrtcConfig(ctx.config.namespace);
      cached = { at: Date.now(), value };
      value.catch(() => { cached = null; });
    }
    return cached.value;
  };

  app.post<{ Body: { ttl?: number } | undefined }>('/v1/webrtc/turn/credentials', {
    onRequest: requirePrincipal(ctx.auth),
    preHandler: ctx.rateLimit(ctx.config.rateLimit.credentialsPerMinute),
    schema: {
      body: {
        type: ['object', 'null'],
        additionalProperties: false,
        properties: { ttl: { type: 'integer', minimum: 60, maximum: 86400 } },
      },
      response: {
        200: {
          type: 'object',
          properties: { urls: { type: 'array', items: { type: 'string' } }, username: { type: 'string' }, credential: { type: 'string' }, ttl: { type: 'integer' } },
        },
      },
    },
  }, async (req) => {
    const cfg = await webrtcConfig();
    if (!cfg || !cfg.enabled) throw new HttpError(404, 'not_found', `WebRTC is not enabled for namespace "${ctx.config.namespace}"`);
    const maxTtl = ctx.config.turn.ttl ?? cfg.turnTtl;
    // A client may ask for a shorter lifetime, never a longer one.
    const ttl = Math.min(req.body?.ttl ?? maxTtl, maxTtl);
    return issue({ secret: cfg.turnSecret.reveal(), namespace: ctx.config.namespace, subject: req.principal!.subject, urls: ctx.config.turn.urls, ttl });
  });
}
