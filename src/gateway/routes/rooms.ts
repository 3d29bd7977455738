// Rooms: GET (list, with the SFU node and, when the SFU reports it, peer counts), POST (owner;
// idempotent for the room's owner, 409 for anyone else), DELETE (owner of the room; the SFU
// closes it and tells its peers, then the row goes).
import type { FastifyInstance } from 'fastify';
import { ROOM_NAME_PATTERN } from '../../webrtc/protocol.ts';
import type { Room } from '../../store/store.ts';
import type { GatewayContext } from '../context.ts';
import { requirePrincipal } from '../auth.ts';
import { HttpError } from '../errors.ts';

const roomJson = {
  type: 'object',
  properties: {
    room_id: { type: 'string' }, sfu_node: { type: 'string' }, owner: { type: 'string' },
    created_at: { type: 'integer' }, peers: { type: ['integer', 'null'] },
  },
};
const roomId = { type: 'string', pattern: ROOM_NAME_PATTERN };

const view = (r: Room, peers: number | null = null) => ({ room_id: r.roomId, sfu_node: r.sfuNode, owner: r.owner, created_at: r.createdAt, peers });

export async function roomRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const ns = ctx.config.namespace;

  app.get('/v1/webrtc/rooms', {
    onRequest: requirePrincipal(ctx.auth),
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: {} },
      response: { 200: { type: 'object', properties: { rooms: { type: 'array', items: roomJson } } } },
    },
  }, async () => {
    const rooms = await ctx.store.listRooms(ns);
    const nodes = [...new Set(rooms.map((r) => r.sfuNode))];
    const peers = new Map(await Promise.all(nodes.map(async (n) => [n, await ctx.affinity.roomPeers(n)] as const)));
    return { rooms: rooms.map((r) => view(r, peers.get(r.sfuNode)?.get(r.roomId) ?? (peers.get(r.sfuNode) ? 0 : null))) };
  });

  app.post<{ Body: { room_id: string } }>('/v1/webrtc/rooms', {
    onRequest: requirePrincipal(ctx.auth, { owner: true }),
    preHandler: ctx.rateLimit(ctx.config.rateLimit.roomCreatesPerMinute),
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['room_id'], properties: { room_id: roomId } },
      response: { 200: roomJson, 201: roomJson },
    },
  }, async (req, reply) => {
    const subject = req.principal!.subject;
    const existing = await ctx.store.getRoom(ns, req.body.room_id);
    if (existing && existing.owner !== subject) throw new HttpError(409, 'conflict', `room "${req.body.room_id}" already exists and is owned by another subject`);
    const room = await ctx.affinity.place(req.body.room_id, subject);
    if (room.owner !== subject) throw new HttpError(409, 'conflict', `room "${req.body.room_id}" already exists and is owned by another subject`);
    return reply.code(existing ? 200 : 201).send(view(room));
  });

  app.delete<{ Querystring: { room_id: string } }>('/v1/webrtc/rooms', {
    onRequest: requirePrincipal(ctx.auth, { owner: true }),
    schema: {
      querystring: { type: 'object', additionalProperties: false, required: ['room_id'], properties: { room_id: roomId } },
      response: { 200: { type: 'object', properties: { room_id: { type: 'string' }, closed: { type: 'boolean' }, sfu_notified: { type: 'boolean' } } } },
    },
  }, async (req) => {
    const id = req.query.room_id;
    const room = await ctx.store.getRoom(ns, id);
    if (!room) throw new HttpError(404, 'not_found', `room "${id}" does not exist in namespace "${ns}"`);
    if (room.owner !== req.principal!.subject) throw new HttpError(403, 'forbidden', `room "${id}" is owned by another subject`);
    const sfu = await ctx.affinity.closeOnSfu(room);
    // An SFU that answers but refuses is misconfigured: keep the row so the close can be retried.
    // One that does not answer is down, and its peers are gone with it.
    if (!sfu.notified && sfu.status !== undefined) {
      throw new HttpError(502, 'bad_gateway', `SFU on node "${room.sfuNode}" refused to close room "${id}" (HTTP ${sfu.status})`);
    }
    await ctx.store.deleteRoom(ns, id);
    req.log.info({ room: id, sfu_node: room.sfuNode, sfu_notified: sfu.notified }, 'room closed');
    return { room_id: id, closed: true, sfu_notified: sfu.notified };
  });
}
