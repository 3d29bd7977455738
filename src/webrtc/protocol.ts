// The signaling protocol between a client (through the gateway) and the SFU: JSON text frames
// over one WebSocket. Shared by the SFU, the gateway and the browser client, so it must stay free
// of Node-only imports (the browser bundle imports the types and PROTOCOL_VERSION only).
//
// Versioning: PROTOCOL_VERSION is sent in `joined`; additive changes (new optional fields, new
// server→client message types a client may ignore) keep the version, anything else bumps it.

export const PROTOCOL_VERSION = 1;

/**
 * How long the SFU keeps a peer whose signaling socket closed without `leave` (a gateway restart,
 * a network blip): its media goes on, and the client may `resume` it on a new socket (any
 * gateway) within this time. After it, the peer leaves.
 */
export const RESUME_GRACE_S = 10;

/** Close code the gateway gives a client when the SFU behind it went away (no resume there). */
export const CLOSE_SFU_LOST = 4011;

/** Upper bound of one signaling frame (bytes). SDP for a 10-peer room is ~30 KiB. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

export interface DisplayInfo {
  name?: string;
}

// ---- client → SFU ----
export interface JoinMessage { type: 'join'; room: string; display?: DisplayInfo }
export interface OfferMessage { type: 'offer'; sdp: string }
export interface AnswerMessage { type: 'answer'; sdp: string }
/** `candidate: null` marks end of candidates. */
export interface IceCandidateMessage { type: 'ice-candidate'; candidate: IceCandidateInit | null }
export interface LeaveMessage { type: 'leave' }
/** Re-attach this new socket to a peer whose socket closed (within RESUME_GRACE_S). */
export interface ResumeMessage { type: 'resume'; room: string; peer_id: string; resume_token: string }
/**
 * Which simulcast layer of `peer_id`'s video this client wants (0 = the lowest; above the top
 * means the top). The SFU sends at most that layer, lower while this client's bandwidth estimate
 * says so. Kept for the publisher's later tracks too; ignored by an SFU without simulcast.
 */
export interface PreferredLayerMessage { type: 'preferred-layer'; peer_id: string; layer: number }

/** Layers a `preferred-layer` may name: 0 .. MAX_LAYER (the SFU clamps to what the publisher sends). */
export const MAX_LAYER = 15;

export type ClientMessage = JoinMessage | OfferMessage | AnswerMessage | IceCandidateMessage | LeaveMessage | ResumeMessage | PreferredLayerMessage;

// ---- SFU → client ----
export interface PeerInfo { peer_id: string; display?: DisplayInfo; subject?: string }
/**
 * `resume_token`: the secret a `resume` of this peer must show (kept by the client only).
 * `simulcast: true`: the SFU forwards simulcast — publish video as up to 3 RID layers, lowest
 * first (absent: publish one encoding; an SFU without simulcast would forward only the first).
 * `header_extensions`: RTP header extension URI -> the id the SFU's packets carry it under; a
 * client offers its extensions under these ids and leaves out the others (absent: any ids).
 */
export interface JoinedMessage { type: 'joined'; protocol_version: number; room: string; peer_id: string; peers: PeerInfo[]; resume_token?: string; simulcast?: boolean; header_extensions?: Record<string, number> }
/** The peer is back on this socket; messages the SFU sent meanwhile follow. */
export interface ResumedMessage { type: 'resumed'; room: string; peer_id: string; peers: PeerInfo[] }
export interface PeerJoinedMessage extends PeerInfo { type: 'peer-joined' }
export interface PeerLeftMessage { type: 'peer-left'; peer_id: string }
export interface TurnCredentialsMessage { type: 'turn-credentials'; urls: string[]; username: string; credential: string; ttl: number }
export interface RefreshCredentialsMessage { type: 'refresh-credentials'; urls: string[]; username: string; credential: string; ttl: number }
export interface ServerDrainingMessage { type: 'server-draining'; deadline_s: number }
export interface RoomClosedMessage { type: 'room-closed'; room: string }
export interface ErrorMessage { type: 'error'; code: ErrorCode; message: string }

export type ServerMessage =
  | OfferMessage | AnswerMessage | IceCandidateMessage
  | JoinedMessage | ResumedMessage | PeerJoinedMessage | PeerLeftMessage
  | TurnCredentialsMessage | RefreshCredentialsMessage
  | ServerDrainingMessage | RoomClosedMessage | ErrorMessage;

export const ERROR_CODES = [
  'bad_json',        // frame is not JSON
  'invalid_message', // JSON that fails the schema of its type
  'unknown_type',    // a `type` this version does not know
  'too_large',       // frame above MAX_MESSAGE_BYTES
  'rate_limited',    // too many frames per second; the frame was dropped
  'not_joined',      // offer/answer/candidate before join
  'already_joined',  // second join on one connection
  'draining',        // server is draining: join another SFU (the gateway picks one)
  'room_full',       // peers per room bound reached
  'resume_failed',   // no such peer to resume here (gone, other SFU, wrong token): join again
  'negotiation_failed', // the SDP could not be applied
  'internal',        // a bug; the connection stays usable
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

// ---- JSON schemas (ajv, draft-07) ----
const sdp = { type: 'string', minLength: 1, maxLength: MAX_MESSAGE_BYTES, pattern: '^v=0\\r?\\n' };
const display = {
  type: 'object',
  additionalProperties: false,
  properties: { name: { type: 'string', maxLength: 64 } },
};
const candidateInit = {
  type: 'object',
  additionalProperties: false,
  required: ['candidate'],
  properties: {
    candidate: { type: 'string', maxLength: 1024 },
    sdpMid: { type: ['string', 'null'], maxLength: 32 },
    sdpMLineIndex: { type: ['integer', 'null'], minimum: 0, maximum: 1024 },
    usernameFragment: { type: ['string', 'null'], maxLength: 256 },
  },
};
const typed = (type: string, required: string[], properties: Record<string, unknown>) => ({
  type: 'object',
  additionalProperties: false,
  required: ['type', ...required],
  properties: { type: { const: type }, ...properties },
});

/** Room names: what a URL query and a DB key can carry without escaping. */
export const ROOM_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

export const clientMessageSchemas: Record<ClientMessage['type'], object> = {
  join: typed('join', ['room'], { room: { type: 'string', pattern: ROOM_NAME_PATTERN }, display }),
  offer: typed('offer', ['sdp'], { sdp }),
  answer: typed('answer', ['sdp'], { sdp }),
  'ice-candidate': typed('ice-candidate', ['candidate'], { candidate: { oneOf: [candidateInit, { type: 'null' }] } }),
  leave: typed('leave', [], {}),
  resume: typed('resume', ['room', 'peer_id', 'resume_token'], {
    room: { type: 'string', pattern: ROOM_NAME_PATTERN },
    peer_id: { type: 'string', pattern: '^[0-9a-f]{12}$' },
    resume_token: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' },
  }),
  'preferred-layer': typed('preferred-layer', ['peer_id', 'layer'], {
    peer_id: { type: 'string', pattern: '^[0-9a-f]{12}$' },
    layer: { type: 'integer', minimum: 0, maximum: MAX_LAYER },
  }),
};

const credentials = {
  urls: { type: 'array', items: { type: 'string' }, minItems: 1 },
  username: { type: 'string' },
  credential: { type: 'string' },
  ttl: { type: 'integer', minimum: 1 },
};
const peerInfo = { peer_id: { type: 'string' }, display, subject: { type: 'string' } };

export const serverMessageSchemas: Record<ServerMessage['type'], object> = {
  offer: clientMessageSchemas.offer,
  answer: clientMessageSchemas.answer,
  'ice-candidate': clientMessageSchemas['ice-candidate'],
  joined: typed('joined', ['protocol_version', 'room', 'peer_id', 'peers'], {
    protocol_version: { type: 'integer' },
    room: { type: 'string' },
    peer_id: { type: 'string' },
    peers: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['peer_id'], properties: peerInfo } },
    resume_token: { type: 'string' },
    simulcast: { type: 'boolean' },
    // One-byte header extension ids (RFC 8285): 1-14.
    header_extensions: { type: 'object', maxProperties: 14, additionalProperties: { type: 'integer', minimum: 1, maximum: 14 } },
  }),
  resumed: typed('resumed', ['room', 'peer_id', 'peers'], {
    room: { type: 'string' },
    peer_id: { type: 'string' },
    peers: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['peer_id'], properties: peerInfo } },
  }),
  'peer-joined': typed('peer-joined', ['peer_id'], peerInfo),
  'peer-left': typed('peer-left', ['peer_id'], { peer_id: { type: 'string' } }),
  'turn-credentials': typed('turn-credentials', ['urls', 'username', 'credential', 'ttl'], credentials),
  'refresh-credentials': typed('refresh-credentials', ['urls', 'username', 'credential', 'ttl'], credentials),
  'server-draining': typed('server-draining', ['deadline_s'], { deadline_s: { type: 'number', minimum: 0 } }),
  'room-closed': typed('room-closed', ['room'], { room: { type: 'string' } }),
  error: typed('error', ['code', 'message'], { code: { enum: [...ERROR_CODES] }, message: { type: 'string' } }),
};
