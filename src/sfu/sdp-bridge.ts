// SDP <-> mediasoup RTP parameters, on the SFU side: mediasoup speaks RTP parameters, clients
// (a plain RTCPeerConnection, as the specification's snippet) speak SDP. No maintained bridge
// exists (mediasoup-sdp-bridge was abandoned before a release); this one follows
// mediasoup-client's handlers (sdp/commonUtils, sdp/unifiedPlanUtils, sdp/RemoteSdp) for one
// bundled, unified-plan connection that both publishes and subscribes:
//   - a client m-line that sends becomes a producer (its codec, RTX, header extensions, SSRCs or
//     simulcast RIDs); the answer receives it;
//   - a consumer becomes an m-line the SFU sends (in the SFU's offers);
//   - m=application is SCTP (data channels).
// The SFU is ICE-lite and the DTLS server (a=setup:passive in answers, actpass in its offers).
import sdpTransform from 'sdp-transform';
import type { types } from 'mediasoup';
import type { MediaKind } from './engine.ts';

type MediaDescription = sdpTransform.MediaDescription;

/** The parts of a client offer the engine acts on. */
export interface ParsedOffer {
  sections: OfferedSection[];
  dtls: types.DtlsParameters;
  iceUfrag: string;
  /** Header extension ids the client uses, by URI (one BUNDLE: one id per URI). */
  extensionIds: Map<string, number>;
}

export interface OfferedSection {
  mid: string;
  kind: MediaKind | 'application';
  /** Port 0: the client rejected or stopped it. */
  rejected: boolean;
  /** The client sends on it (sendrecv/sendonly). */
  sending: boolean;
  media: MediaDescription;
}

export function parseOffer(sdp: string): ParsedOffer {
  const session = sdpTransform.parse(sdp);
  const media = session.media ?? [];
  if (media.length === 0) throw new Error('the offer has no m-line');
  const fingerprint = session.fingerprint ?? media.find((m) => m.fingerprint)?.fingerprint;
  if (!fingerprint) throw new Error('the offer has no DTLS fingerprint');
  const setup = media.find((m) => m.setup)?.setup ?? session.setup ?? 'actpass';
  // Their role: actpass lets the SFU be the DTLS server; 'passive' makes the client the server.
  const role: types.DtlsRole = setup === 'passive' ? 'server' : 'client';
  const iceUfrag = media.find((m) => m.iceUfrag)?.iceUfrag ?? session.iceUfrag;
  if (!iceUfrag) throw new Error('the offer has no ICE ufrag');
  const extensionIds = new Map<string, number>();
  const sections = media.map((m, index): OfferedSection => {
    if (m.mid === undefined) throw new Error(`m-line ${index} has no a=mid`);
    if (m.type !== 'audio' && m.type !== 'video' && m.type !== 'application') throw new Error(`m-line ${index}: media type ${m.type} is not supported`);
    for (const ext of m.ext ?? []) if (!extensionIds.has(ext.uri)) extensionIds.set(ext.uri, ext.value);
    const direction = m.direction ?? 'sendrecv';
    return { mid: String(m.mid), kind: m.type, rejected: m.port === 0, sending: direction === 'sendrecv' || direction === 'sendonly', media: m };
  });
  return { sections, dtls: { role, fingerprints: [{ algorithm: fingerprint.type.toLowerCase() as types.FingerprintAlgorithm, value: fingerprint.hash }] }, iceUfrag, extensionIds };
}

function feedbackOf(m: MediaDescription, payload: number): types.RtcpFeedback[] {
  return (m.rtcpFb ?? [])
    .filter((fb) => Number(fb.payload) === payload || fb.payload === '*')
    .map((fb) => ({ type: fb.type, ...(fb.subtype ? { parameter: fb.subtype } : {}) }));
}

function fmtpOf(m: MediaDescription, payload: number): Record<string, unknown> {
  const line = (m.fmtp ?? []).find((f) => f.payload === payload);
  return line ? (sdpTransform.parseParams(line.config) as Record<string, unknown>) : {};
}

/** Codecs of an offered m-line as mediasoup codec parameters, in the client's order. */
export function offeredCodecs(m: MediaDescription): types.RtpCodecParameters[] {
  return (m.rtp ?? []).map((rtp) => ({
    mimeType: `${m.type}/${rtp.codec}`,
    payloadType: rtp.payload,
    clockRate: rtp.rate ?? 90000,
    ...(m.type === 'audio' ? { channels: rtp.encoding ? Number(rtp.encoding) : 1 } : {}),
    parameters: fmtpOf(m, rtp.payload),
    rtcpFeedback: feedbackOf(m, rtp.payload),
  }));
}

const lower = (s: string) => s.toLowerCase();

/** Extensions the worker only reads (simulcast stream ids): it never writes them on forwarded packets. */
const READ_ONLY_EXTENSIONS = new Set(['urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id', 'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id']);
/**
 * Extensions never taken from publishers: the worker writes on forwarded packets only those a
 * publisher sent (besides mid, abs-send-time and transport-cc), so their ids (10, 11) stay free
 * for what Chrome keeps there (the simulcast RIDs).
 */
const NOT_FROM_PUBLISHERS = new Set(['http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time', 'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay']);

/** mediasoup's own extension (between its workers), never a client's. */
const INTERNAL_EXTENSIONS = new Set(['urn:mediasoup:params:rtp-hdrext:packet-id']);

/**
 * The ids a client should offer its extensions under (`joined.header_extensions`): the router's
 * own, for what the SFU takes from publishers. Offered so, every client extension the SFU keeps
 * is kept under its own id (consistentId's first case) and nothing in the BUNDLE collides.
 */
export function clientExtensionIds(router: Pick<types.RtpCapabilities, 'headerExtensions'>): Record<string, number> {
  const ids: Record<string, number> = {};
  for (const h of router.headerExtensions ?? []) if (!NOT_FROM_PUBLISHERS.has(h.uri) && !INTERNAL_EXTENSIONS.has(h.uri)) ids[h.uri] = h.preferredId;
  return ids;
}

/**
 * One id space for the whole BUNDLE. mediasoup's worker rewrites every forwarded packet's header
 * extensions to its own ids (the router's preferredIds: mid 1, abs-send-time 4, transport-cc 5,
 * audio-level 6, video-orientation 8, toffset 9, abs-capture-time 10, playout-delay 11; rid 2 and
 * rrid 3 are receive-only) whatever a consumer negotiated, and the client's ids live in the same
 * BUNDLE: Chrome's mid is 4, so a forwarded video packet's abs-send-time (4) read as a MID sent
 * the packet nowhere (Chrome dropped every forwarded video packet; audio passed). So the SFU
 * accepts a client's extension only under the router's id for it, or under an id the router
 * never uses; the others stay out of the answer (the client then does not send them). The
 * simulcast RIDs, which the worker only reads, are also accepted under an id the worker never
 * writes (Chrome's 10 and 11: abs-capture-time and playout-delay are not taken from publishers).
 */
export function consistentId(uri: string, id: number, router: types.RtpCapabilities): boolean {
  const exts = router.headerExtensions ?? [];
  const own = exts.find((h) => h.uri === uri)?.preferredId;
  if (own === id) return true;
  if (READ_ONLY_EXTENSIONS.has(uri)) return !exts.some((h) => h.preferredId === id && !READ_ONLY_EXTENSIONS.has(h.uri) && !NOT_FROM_PUBLISHERS.has(h.uri));
  return !exts.some((h) => h.preferredId === id);
}

/**
 * What the producer of a sending m-line sends: the first of its codecs the router has (plus its
 * RTX), the header extensions the router knows, its encodings (SSRCs, or simulcast RIDs).
 */
export function producerParameters(section: OfferedSection, router: types.RtpCapabilities): types.RtpParameters {
  const m = section.media;
  const codecs = offeredCodecs(m);
  const routerMimes = new Set((router.codecs ?? []).filter((c) => c.kind === m.type).map((c) => lower(c.mimeType)));
  const media = codecs.find((c) => routerMimes.has(lower(c.mimeType)) && !/\/rtx$/i.test(c.mimeType));
  if (!media) throw new Error(`m-line ${section.mid}: none of its ${m.type} codecs (${codecs.map((c) => c.mimeType).join(', ')}) is one the SFU forwards (${[...routerMimes].join(', ')})`);
  const rtx = codecs.find((c) => /\/rtx$/i.test(c.mimeType) && Number(c.parameters?.apt) === media.payloadType);
  const uris = new Set((router.headerExtensions ?? []).filter((h) => h.kind === m.type).map((h) => h.uri));
  const headerExtensions = (m.ext ?? [])
    .filter((e) => uris.has(e.uri as types.RtpHeaderExtensionUri) && !NOT_FROM_PUBLISHERS.has(e.uri) && !INTERNAL_EXTENSIONS.has(e.uri) && consistentId(e.uri, e.value, router))
    .map((e) => ({ uri: e.uri as types.RtpHeaderExtensionUri, id: e.value }));
  const cname = (m.ssrcs ?? []).find((s) => s.attribute === 'cname')?.value;
  return {
    mid: section.mid,
    codecs: rtx ? [media, { ...rtx, rtcpFeedback: [] }] : [media],
    headerExtensions,
    encodings: encodingsOf(m),
    rtcp: { cname, reducedSize: true },
  };
}

/** Simulcast RIDs (a=simulcast:send) lowest first as the client lists them, else its SSRC (+ RTX). */
export function encodingsOf(m: MediaDescription): types.RtpEncodingParameters[] {
  const sendRids = (m.rids ?? []).filter((r) => r.direction === 'send').map((r) => String(r.id));
  if (sendRids.length > 0) {
    const list = m.simulcast?.dir1 === 'send' ? m.simulcast.list1 : m.simulcast?.dir2 === 'send' ? m.simulcast.list2 : undefined;
    const order = list ? list.split(';').map((alt) => alt.split(',')[0].replace(/^~/, '')) : sendRids;
    return order.filter((rid) => sendRids.includes(rid)).map((rid) => ({ rid }));
  }
  const ssrcs = [...new Set((m.ssrcs ?? []).map((s) => Number(s.id)))];
  if (ssrcs.length === 0) throw new Error(`m-line ${m.mid}: it sends but names no SSRC and no simulcast RID`);
  const fid = (m.ssrcGroups ?? []).find((g) => g.semantics === 'FID');
  if (fid) {
    const [primary, repair] = fid.ssrcs.split(' ').map(Number);
    return [{ ssrc: primary, rtx: { ssrc: repair } }];
  }
  return [{ ssrc: ssrcs[0] }];
}

/**
 * The client's receive capabilities, for consumers: the router's codecs and header extensions
 * the client offered, under the extension ids the client already uses (in one BUNDLE an id
 * means one extension on every m-line; Chrome rejects an offer that reuses one). A client whose
 * offer has no audio or video (a receive-only client offers just its data channel) gets the
 * router's: opus and VP8 are mandatory to implement in WebRTC (RFC 7874, RFC 7742).
 */
export function clientRtpCapabilities(offer: ParsedOffer, router: types.RtpCapabilities): types.RtpCapabilities {
  const media = offer.sections.filter((s) => s.kind !== 'application');
  if (media.length === 0) return { codecs: router.codecs, headerExtensions: router.headerExtensions };
  const offered = new Set<string>();
  for (const s of media) for (const c of offeredCodecs(s.media)) offered.add(lower(c.mimeType));
  // Consumers carry the router's ids (the worker writes those, see consistentId): only what the
  // client offered (an extension it never mentioned it may not parse), and only where the id is
  // not one the client keeps for another extension.
  const kept = new Map<number, string>();
  for (const [uri, id] of offer.extensionIds) if (consistentId(uri, id, router)) kept.set(id, uri);
  // The worker never writes the simulcast RIDs: a consumer m-line does not name them (the
  // client's own m-lines may, under the client's ids).
  const headerExtensions = (router.headerExtensions ?? []).filter(
    (h) => offer.extensionIds.has(h.uri) && !READ_ONLY_EXTENSIONS.has(h.uri) && (kept.get(h.preferredId) ?? h.uri) === h.uri,
  );
  return {
    codecs: (router.codecs ?? []).filter((c) => offered.has(lower(c.mimeType)) || (/\/rtx$/i.test(c.mimeType) && offered.has(`${c.kind}/rtx`))),
    headerExtensions,
  };
}

/** What the SFU's side of the connection says about itself in every m-line. */
export interface LocalTransport {
  ice: types.IceParameters;
  candidates: types.IceCandidate[];
  fingerprints: types.DtlsFingerprint[];
  sctp?: types.SctpParameters;
}

/** One m-line of the SFU's description (answer or offer). */
export type LocalSection =
  | { mid: string; kind: MediaKind; role: 'receive'; rtp: types.RtpParameters; offered: MediaDescription }
  | { mid: string; kind: MediaKind; role: 'send'; rtp: types.RtpParameters; active: boolean; streamId: string; trackId: string }
  | { mid: string; kind: 'application'; role: 'data' }
  | { mid: string; kind: MediaKind | 'application'; role: 'rejected'; offered?: MediaDescription };

function codecLines(media: MediaDescription, rtp: types.RtpParameters): void {
  media.rtp = [];
  media.fmtp = [];
  media.rtcpFb = [];
  for (const c of rtp.codecs) {
    const [, name] = c.mimeType.split('/');
    media.rtp.push({ payload: c.payloadType, codec: name, rate: c.clockRate, ...(c.channels && c.channels > 1 ? { encoding: c.channels } : {}) });
    const params = Object.entries(c.parameters ?? {});
    if (params.length > 0) media.fmtp.push({ payload: c.payloadType, config: params.map(([k, v]) => `${k}=${v}`).join(';') });
    for (const fb of c.rtcpFeedback ?? []) media.rtcpFb.push({ payload: String(c.payloadType), type: fb.type, ...(fb.parameter ? { subtype: fb.parameter } : {}) });
  }
  media.payloads = rtp.codecs.map((c) => c.payloadType).join(' ');
  media.ext = (rtp.headerExtensions ?? []).map((h) => ({ value: h.id, uri: h.uri }));
}

function baseMedia(kind: string, mid: string, local: LocalTransport, setup: 'passive' | 'actpass'): MediaDescription {
  const media = {
    type: kind,
    port: 7,
    protocol: kind === 'application' ? 'UDP/DTLS/SCTP' : 'UDP/TLS/RTP/SAVPF',
    payloads: kind === 'application' ? 'webrtc-datachannel' : '',
    connection: { version: 4, ip: '127.0.0.1' },
    rtp: [],
    fmt: [],
    mid,
    iceUfrag: local.ice.usernameFragment,
    icePwd: local.ice.password,
    fingerprint: { type: local.fingerprints[0].algorithm, hash: local.fingerprints[0].value },
    setup,
    // All of them in the description (ICE-lite: nothing is trickled), in every m-line.
    candidates: local.candidates.map((c) => ({
      foundation: c.foundation,
      component: 1,
      transport: c.protocol,
      priority: c.priority,
      ip: c.address,
      port: c.port,
      type: c.type,
      ...(c.tcpType ? { tcptype: c.tcpType } : {}),
    })),
    endOfCandidates: 'end-of-candidates',
  } as unknown as MediaDescription;
  return media;
}

/** The SFU's description: every section in order; `type` decides the DTLS setup attribute. */
export function writeDescription(type: 'answer' | 'offer', sessionVersion: number, local: LocalTransport, sections: LocalSection[]): string {
  const setup = type === 'answer' ? 'passive' : 'actpass';
  const media: MediaDescription[] = sections.map((s) => {
    const m = baseMedia(s.kind, s.mid, local, setup);
    if (s.role === 'rejected') {
      m.port = 0;
      m.direction = 'inactive';
      if (s.kind === 'application') {
        (m as { sctpPort?: number }).sctpPort = 5000;
      } else if (s.offered) {
        // A rejected m-line keeps a codec of the offer (a format list may not be empty).
        const first = s.offered.rtp?.[0];
        if (first) {
          m.rtp = [{ payload: first.payload, codec: first.codec, rate: first.rate }];
          m.payloads = String(first.payload);
        }
      }
      delete (m as { candidates?: unknown }).candidates;
      delete (m as { endOfCandidates?: unknown }).endOfCandidates;
      return m;
    }
    if (s.role === 'data') {
      (m as { sctpPort?: number }).sctpPort = local.sctp?.port ?? 5000;
      (m as { maxMessageSize?: number }).maxMessageSize = local.sctp?.maxMessageSize ?? 262144;
      return m;
    }
    m.rtcpMux = 'rtcp-mux';
    m.rtcpRsize = 'rtcp-rsize';
    codecLines(m, s.rtp);
    if (s.role === 'receive') {
      m.direction = 'recvonly';
      const rids = (s.rtp.encodings ?? []).map((e) => e.rid).filter((r): r is string => !!r);
      if (rids.length > 0) {
        m.rids = rids.map((id) => ({ id, direction: 'recv' }));
        m.simulcast = { dir1: 'recv', list1: rids.join(';') };
      }
      return m;
    }
    m.direction = s.active ? 'sendonly' : 'inactive';
    if (s.active) {
      const encoding = s.rtp.encodings?.[0];
      const cname = s.rtp.rtcp?.cname ?? 'orama-sfu';
      // sdp-transform 2.15 writes a=msid from a string (its typings say otherwise).
      (m as { msid?: unknown }).msid = `${s.streamId} ${s.trackId}`;
      const ssrcs: { id: number; attribute: string; value: string }[] = [];
      if (encoding?.ssrc !== undefined) {
        ssrcs.push({ id: encoding.ssrc, attribute: 'cname', value: cname }, { id: encoding.ssrc, attribute: 'msid', value: `${s.streamId} ${s.trackId}` });
        if (encoding.rtx?.ssrc !== undefined) {
          ssrcs.push({ id: encoding.rtx.ssrc, attribute: 'cname', value: cname }, { id: encoding.rtx.ssrc, attribute: 'msid', value: `${s.streamId} ${s.trackId}` });
          m.ssrcGroups = [{ semantics: 'FID', ssrcs: `${encoding.ssrc} ${encoding.rtx.ssrc}` }];
        }
      }
      m.ssrcs = ssrcs;
    }
    return m;
  });
  const bundled = sections.filter((s) => s.role !== 'rejected').map((s) => s.mid);
  const session = {
    version: 0,
    origin: { username: '-', sessionId: '4611731400430051336', sessionVersion, netType: 'IN', ipVer: 4, address: '127.0.0.1' },
    name: '-',
    timing: { start: 0, stop: 0 },
    icelite: 'ice-lite',
    groups: bundled.length > 0 ? [{ type: 'BUNDLE', mids: bundled.join(' ') }] : [],
    msidSemantic: { semantic: 'WMS', token: '*' },
    media,
  } as unknown as sdpTransform.SessionDescription;
  return sdpTransform.write(session);
}
