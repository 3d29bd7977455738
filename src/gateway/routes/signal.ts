// GET /v1/webrtc/signal?room=R upgraded to a WebSocket and piped to the SFU that owns room R:
// ws://<ip>:<signal_port>/signal?room=R with the internal key, the namespace and the subject as
// headers (the client's own credentials never go further than this gateway). Frames are passed
// through unchanged both ways, bounded in size; when either side closes, so does the other.
import type { FastifyInstance } from 'fastify';
import { WebSocket, type RawData } from 'ws';
import { CLOSE_SFU_LOST, MAX_MESSAGE_BYTES, ROOM_NAME_PATTERN } from '../../webrtc/protocol.ts';
import type { Room } from '../../store/store.ts';
import type { GatewayContext } from '../context.ts';
import { requirePrincipal } from '../auth.ts';
import { HttpError } from '../errors.ts';
import { SFU_HEADERS, SFU_PATHS } from '../../webrtc/sfu-api.ts';

declare module 'fastify' {
  interface FastifyRequest {
    room?: Room;
  }
}

/** Frames a client may send before the SFU connection is open. */
const MAX_PENDING = 32;
/**
 * The SFU connection is pinged this often; one without a pong by the next ping is dead (the
 * SFU's node lost power or its network: no FIN ever comes) — 2 to 4 s to notice.
 */
export const UPSTREAM_PING_MS = 2000;

// Close codes that may be sent on the wire (1005/1006/1015 are reserved for "none given").
function sendable(code: number): number {
  return code === 1000 || (code >= 1001 && code <= 1014 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999) ? code : 1000;
}
const reasonOf = (r: Buffer | string) => Buffer.from(r).subarray(0, 120).toString();

export async function signalRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const ns = ctx.config.namespace;

  app.route<{ Querystring: { room: string } }>({
    method: 'GET',
    url: '/v1/webrtc/signal',
    onRequest: requirePrincipal(ctx.auth),
    schema: { querystring: { type: 'object', additionalProperties: false, required: ['room'], properties: { room: { type: 'string', pattern: ROOM_NAME_PATTERN } } } },
    // Runs before the upgrade, so a refusal is a plain HTTP answer the client can read.
    preHandler: async (req) => {
      if (!req.ws) throw new HttpError(426, 'upgrade_required', 'this endpoint speaks WebSocket: send Upgrade: websocket');
      const p = req.principal!;
      const existing = await ctx.store.getRoom(ns, req.query.room);
      // Owners open rooms by joining them; everyone else joins rooms that exist.
      if (!existing && !p.owner) throw new HttpError(404, 'not_found', `room "${req.query.room}" does not exist in namespace "${ns}"`);
      req.room = await ctx.affinity.place(req.query.room, p.subject);
    },
    handler: async () => {
      throw new HttpError(426, 'upgrade_required', 'this endpoint speaks WebSocket: send Upgrade: websocket');
    },
    wsHandler: (client, req) => {
      const room = req.room!;
      const node = ctx.affinity.node(room.sfuNode)!;
      const target = `${ctx.affinity.baseUrl(node).replace(/^http/, 'ws')}${SFU_PATHS.signal}?room=${encodeURIComponent(room.roomId)}`;
      const upstream = new WebSocket(target, {
        headers: {
          [SFU_HEADERS.internalKey]: ctx.config.internalKey.reveal(),
          [SFU_HEADERS.namespace]: ns,
          [SFU_HEADERS.subject]: req.principal!.subject,
        },
        maxPayload: MAX_MESSAGE_BYTES,
        handshakeTimeout: 5000,
      });
      const log = req.log.child({ room: room.roomId, sfu_node: room.sfuNode });
      ctx.connections.add(client);
      let pending: { data: RawData; binary: boolean }[] | null = [];
      let done = false;

      const finish = (code: number, reason: string) => {
        if (done) return;
        done = true;
        clearInterval(heartbeat);
        ctx.connections.delete(client);
        for (const ws of [client, upstream]) {
          if (ws.readyState === WebSocket.OPEN) ws.close(sendable(code), reason);
          else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        }
        // A peer that never answers the close handshake must not hold the socket.
        setTimeout(() => { client.terminate(); upstream.terminate(); }, 2000).unref();
        log.debug({ code, reason }, 'signaling closed');
      };

      client.on('message', (data, binary) => {
        if (pending) {
          if (pending.length >= MAX_PENDING) return finish(1008, 'too many messages before the SFU answered');
          pending.push({ data, binary });
        } else if (upstream.readyState === WebSocket.OPEN) {
          upstream.send(data, { binary });
        }
      });
      let heartbeat: NodeJS.Timeout | undefined;
      upstream.on('open', () => {
        for (const m of pending ?? []) upstream.send(m.data, { binary: m.binary });
        pending = null;
        let alive = true;
        upstream.on('pong', () => { alive = true; });
        heartbeat = setInterval(() => {
          if (!alive) {
            log.warn({ after_ms: 2 * UPSTREAM_PING_MS }, 'SFU stopped answering pings');
            clearInterval(heartbeat);
            return finish(CLOSE_SFU_LOST, 'SFU connection lost');
          }
          alive = false;
          upstream.ping();
        }, UPSTREAM_PING_MS);
        heartbeat.unref();
      });
      upstream.on('message', (data, binary) => {
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary });
      });
      upstream.on('unexpected-response', (_r, res) => {
        log.warn({ status: res.statusCode }, 'SFU refused the signaling connection');
        res.resume();
        finish(1011, `SFU refused the connection (HTTP ${res.statusCode})`);
      });
      upstream.on('error', (e) => {
        if (done) return; // our own terminate() of a still-connecting upstream
        if (pending) {
          // Never connected: the SFU is down. Forget its health so the client's reconnect is
          // placed on another node.
          ctx.affinity.markDown(room.sfuNode);
          log.warn({ err: { message: e.message } }, 'SFU unreachable');
          return finish(1013, 'SFU unavailable, reconnect');
        }
        finish(CLOSE_SFU_LOST, 'SFU connection lost');
      });
      client.on('error', () => finish(1011, 'client connection error'));
      // 1006: the SFU's end vanished without a close frame (its process died): its peers are gone
      // with it, so the client is told not to resume there but to join again.
      upstream.on('close', (code, reason) => (code === 1006 ? finish(CLOSE_SFU_LOST, 'SFU connection lost') : finish(code, reasonOf(reason))));
      client.on('close', (code, reason) => finish(code, reasonOf(reason)));
    },
  });
}
