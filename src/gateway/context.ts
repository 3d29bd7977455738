// What every route of the gateway is given: its config, the store, authentication, the room → SFU
// affinity, the open signaling sockets and the rate limiter. Built by app.ts, used by routes/.
import type { WebSocket } from 'ws';
import type { Store } from '../store/store.ts';
import type { GatewayConfig } from './config.ts';
import type { Authenticator } from './auth.ts';
import type { Affinity } from './affinity.ts';
import type { rateLimitHook } from './rate-limit.ts';

export interface GatewayContext {
  config: GatewayConfig;
  store: Store;
  auth: Authenticator;
  affinity: Affinity;
  /** Open client signaling sockets, closed when the gateway closes. */
  connections: Set<WebSocket>;
  /** A preHandler hook limiting a route to `max` requests a minute per principal. */
  rateLimit(max: number): ReturnType<typeof rateLimitHook>;
}
