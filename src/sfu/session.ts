// Session: one signaling WebSocket. Bounds frame size and rate, validates every frame and
// dispatches it to exactly one handler per message type; never lets a bad frame throw.
import { parseClientMessage } from '../webrtc/protocol-validate.ts';
import type { ClientMessage, ErrorCode } from '../webrtc/protocol.ts';
import { errorText, type Peer, type SignalingTransport } from './peer.ts';
import type { Room } from './room.ts';
import type { Sfu } from './sfu.ts';

/** Token bucket: sustained frames per second and burst. ICE trickle is the bursty part. */
export const RATE_PER_SECOND = 20;
export const RATE_BURST = 60;
/**
 * A connection that keeps flooding after this many dropped frames is closed. The count starts
 * again only once the bucket is full again (the client stayed within the rate long enough to earn
 * its whole burst back): a flood that lets a frame through now and then is still a flood.
 */
export const MAX_DROPPED_FRAMES = 200;

type Handlers = { [T in ClientMessage['type']]: (session: Session, message: Extract<ClientMessage, { type: T }>) => void | Promise<void> };

const handlers: Handlers = {
  join(session, message) {
    if (session.peer) return session.fail('already_joined', 'this connection already joined a room');
    if (session.room && message.room !== session.room) {
      return session.fail('invalid_message', `join room "${message.room}" differs from the connection's room "${session.room}"`);
    }
    const result = session.sfu.join(message.room, session.transport, { display: message.display, subject: session.subject });
    if (result === 'draining') return session.fail('draining', 'this SFU is draining: reconnect to be placed on another one');
    if (result === 'room_full') return session.fail('room_full', `room "${message.room}" is full`);
    session.peer = result;
    session.joinedRoom = session.sfu.rooms.get(message.room);
  },
  offer(session, message) {
    if (!session.peer) return session.fail('not_joined', 'join first');
    return session.peer.handleOffer(message.sdp);
  },
  answer(session, message) {
    if (!session.peer) return session.fail('not_joined', 'join first');
    return session.peer.handleAnswer(message.sdp);
  },
  'ice-candidate'(session, message) {
    if (!session.peer) return session.fail('not_joined', 'join first');
    return session.peer.handleCandidate(message.candidate);
  },
  async leave(session) {
    await session.end('leave');
  },
  'preferred-layer'(session, message) {
    if (!session.peer) return session.fail('not_joined', 'join first');
    session.peer.preferLayer(message.peer_id, message.layer);
  },
  resume(session, message) {
    if (session.peer) return session.fail('already_joined', 'this connection already joined a room');
    if (session.room && message.room !== session.room) {
      return session.fail('invalid_message', `resume room "${message.room}" differs from the connection's room "${session.room}"`);
    }
    const result = session.sfu.resume(message.room, message.peer_id, message.resume_token, session.subject, session.transport);
    if (typeof result === 'string') return session.fail('resume_failed', result);
    session.peer = result.peer;
    session.joinedRoom = result.room;
  },
};

export class Session {
  peer?: Peer;
  joinedRoom?: Room;
  private tokens = RATE_BURST;
  private lastRefill = Date.now();
  private dropped = 0;
  private lastRateError = 0;

  constructor(
    readonly sfu: Sfu,
    readonly transport: SignalingTransport,
    /** Room named in the URL (?room=), if any: a join must name the same room. */
    readonly room: string | undefined,
    readonly subject: string | undefined,
  ) {}

  fail(code: ErrorCode, message: string): void {
    this.sfu.metrics.reject(code);
    this.transport.send({ type: 'error', code, message });
  }

  private allow(): boolean {
    const now = Date.now();
    this.tokens = Math.min(RATE_BURST, this.tokens + ((now - this.lastRefill) / 1000) * RATE_PER_SECOND);
    this.lastRefill = now;
    if (this.tokens >= RATE_BURST) this.dropped = 0;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  async receive(raw: string | Buffer): Promise<void> {
    if (!this.allow()) {
      this.sfu.metrics.reject('rate_limited');
      if (++this.dropped >= MAX_DROPPED_FRAMES) return this.transport.close(1008, 'rate limit');
      if (Date.now() - this.lastRateError >= 1000) {
        this.lastRateError = Date.now();
        this.transport.send({ type: 'error', code: 'rate_limited', message: `more than ${RATE_PER_SECOND} frames/s; frame dropped` });
      }
      return;
    }
    const parsed = parseClientMessage(raw);
    if (!parsed.ok) return this.fail(parsed.code, parsed.message);
    // The protocol is JSON TEXT frames (docs/protocol.md): a binary frame is refused even when it
    // holds a valid message (the server hands binary frames here as a Buffer).
    if (Buffer.isBuffer(raw)) return this.fail('invalid_message', `a binary frame holding "${parsed.message.type}": signaling messages are JSON text frames`);
    try {
      const handler = handlers[parsed.message.type] as (s: Session, m: ClientMessage) => void | Promise<void>;
      await handler(this, parsed.message);
    } catch (error) {
      this.fail('internal', errorText(error, 'a handler failed').slice(0, 200));
    }
  }

  /** The client left: the peer goes now. */
  async end(reason: string): Promise<void> {
    const peer = this.peer;
    const room = this.joinedRoom;
    this.peer = undefined;
    this.joinedRoom = undefined;
    if (peer && room) await this.sfu.leave(room, peer, reason);
  }

  /** The socket closed without leave: the peer waits for a resume (unless another socket has it). */
  lost(reason: string): void {
    const peer = this.peer;
    const room = this.joinedRoom;
    this.peer = undefined;
    this.joinedRoom = undefined;
    if (peer && room && peer.transport === this.transport) this.sfu.detach(room, peer, reason);
  }
}
