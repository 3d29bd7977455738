// buildGateway(config, deps) → a fastify instance, not yet listening (tests use app.inject;
// main.ts listens). One file per route group under routes/.
import Fastify, { type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import { MAX_MESSAGE_BYTES } from '../webrtc/protocol.ts';
import type { Store } from '../store/store.ts';
import type { GatewayConfig } from './config.ts';
import { Authenticator } from './auth.ts';
import { Affinity } from './affinity.ts';
import { errorHandler, HttpError } from './errors.ts';
import { securityHeaders } from './security-headers.ts';
import { RateLimiter, rateLimitHook } from './rate-limit.ts';
import type { GatewayContext } from './context.ts';
export type { GatewayContext } from './context.ts';
import { healthRoutes } from './routes/health.ts';
import { credentialsRoutes } from './routes/credentials.ts';
import { roomRoutes } from './routes/rooms.ts';
import { signalRoutes } from './routes/signal.ts';
import { clientRoutes } from './routes/client.ts';
import { SFU_HEADERS } from '../webrtc/sfu-api.ts';

export interface GatewayDeps {
  store: Store;
  /** Where log lines go (default stdout); tests capture them here. */
  logStream?: { write(line: string): void };
  /** Verified-token cache size; 0 disables it (the benchmark measures both). */
  tokenCache?: number;
}


/** Header values and log paths that carry credentials: pino replaces them with [REDACTED]. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["sec-websocket-protocol"]',
  `req.headers["${SFU_HEADERS.internalKey}"]`,
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["sec-websocket-protocol"]',
  `headers["${SFU_HEADERS.internalKey}"]`,
  'credential',
  'secret',
  'turnSecret',
  'token',
];

export async function buildGateway(config: GatewayConfig, deps: GatewayDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      ...(deps.logStream ? { stream: deps.logStream } : {}),
    },
    // fastify's two lines per request ("incoming request", "request completed") cost more CPU
    // than answering a credentials request (bench:api); the namespace's HTTPS front keeps the
    // access log. `access_log: true` writes one compact line per request instead.
    disableRequestLogging: true,
    trustProxy: config.trustProxy,
    bodyLimit: 16 * 1024,
    ajv: { customOptions: { allErrors: false, allowUnionTypes: true, removeAdditional: false, coerceTypes: false } },
  });

  const ctx: GatewayContext = {
    config,
    store: deps.store,
    auth: new Authenticator(config.namespace, config.jwt, deps.store, { tokenCache: deps.tokenCache }),
    affinity: new Affinity(deps.store, config.namespace, config.sfuNodes, config.internalKey, { healthCacheMs: config.healthCacheMs }),
    connections: new Set(),
    rateLimit: (max: number) => rateLimitHook(new RateLimiter(max)),
  };

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
  app.addHook('onSend', securityHeaders);
  if (config.accessLog) {
    app.addHook('onResponse', (req, reply, done) => {
      req.log.info({ method: req.method, path: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime), principal: req.principal?.key }, 'request');
      done();
    });
  }

  // Registered at the root (its per-request hooks run on every route): an upgrade asked of any
  // other route is then answered and its connection closed, not left open.
  await app.register(websocket, {
    options: {
      maxPayload: MAX_MESSAGE_BYTES,
      // The seed's client sends ['Bearer', <jwt>]: the server must select "Bearer".
      handleProtocols: (protocols: Set<string>) => (protocols.has('Bearer') ? 'Bearer' : false),
    },
    // Clients are told why (1001 going away), so they reconnect to another gateway.
    preClose: function (this: FastifyInstance, done: () => void) {
      for (const ws of this.websocketServer.clients) ws.close(1001, 'gateway shutting down');
      this.websocketServer.close(() => undefined);
      done();
    },
    errorHandler: (err, socket, req) => {
      req.log.warn({ err: { message: err.message } }, 'signaling socket error');
      socket.terminate();
    },
  });

  await app.register(healthRoutes, ctx);
  await app.register(credentialsRoutes, ctx);
  await app.register(roomRoutes, ctx);
  await app.register(signalRoutes, ctx);
  await app.register(clientRoutes, ctx);

  return app;
}
