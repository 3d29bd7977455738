// The SFU's SDP <-> mediasoup bridge (src/sfu/sdp-bridge.ts), on offers as Chrome writes them:
// what becomes a producer, which header extensions survive (one id space per BUNDLE), the
// client's receive capabilities, the SFU's answer, and the DCEP open parser of the data path.
import t from 'tap';
import * as mediasoup from 'mediasoup';
import sdpTransform from 'sdp-transform';
import { clientExtensionIds, clientRtpCapabilities, consistentId, encodingsOf, parseOffer, producerParameters, writeDescription } from '../../src/sfu/sdp-bridge.ts';
import { alignExtensions } from '../../src/client/extmap.ts';
import { dcepOpenLabel } from '../../src/sfu/engine-mediasoup.ts';

// The router's capabilities for the SFU's codecs, as mediasoup computes them (no worker needed).
const supported = mediasoup.getSupportedRtpCapabilities();
const router = { ...supported, codecs: supported.codecs!.filter((c) => ['audio/opus', 'video/VP8'].includes(c.mimeType)) } as unknown as mediasoup.types.RtpCapabilities;

// A Chrome 156 publish offer (audio, video with RTX, data), header extensions with Chrome's ids.
const CHROME_OFFER = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1 2', 'a=msid-semantic: WMS s',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 7A:4E:4C:BF:2A:37:82:29:F5:97:7E:4D:03:57:70:21:4C:4A:45:CE:F6:57:88:CF:65:FE:2D:A6:9D:E3:3B:B1',
  'a=setup:actpass', 'a=mid:0', 'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01', 'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=sendrecv', 'a=msid:s a', 'a=rtcp-mux', 'a=rtpmap:111 opus/48000/2', 'a=rtcp-fb:111 transport-cc', 'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=ssrc:1001 cname:c',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 98', 'c=IN IP4 0.0.0.0', 'a=mid:1', 'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id', 'a=extmap:13 urn:3gpp:video-orientation',
  'a=sendonly', 'a=msid:s v', 'a=rtcp-mux', 'a=rtcp-rsize', 'a=rtpmap:96 VP8/90000', 'a=rtcp-fb:96 nack', 'a=rtcp-fb:96 nack pli',
  'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96', 'a=rtpmap:98 VP9/90000', 'a=ssrc-group:FID 2001 2002', 'a=ssrc:2001 cname:c', 'a=ssrc:2002 cname:c',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0', 'a=mid:2', 'a=sctp-port:5000', '',
].join('\r\n');

t.test('a Chrome offer: sections, DTLS role, producers', async (t) => {
  const offer = parseOffer(CHROME_OFFER);
  t.same(offer.sections.map((s) => [s.mid, s.kind, s.sending]), [['0', 'audio', true], ['1', 'video', true], ['2', 'application', true]]);
  t.equal(offer.dtls.role, 'client', 'actpass: the SFU is the DTLS server, the client its client');
  t.equal(offer.dtls.fingerprints[0].algorithm, 'sha-256');
  const video = producerParameters(offer.sections[1], router);
  t.same(video.codecs.map((c) => [c.mimeType, c.payloadType]), [['video/VP8', 96], ['video/rtx', 97]], 'VP8 and its RTX; VP9 is not forwarded');
  t.same(video.encodings, [{ ssrc: 2001, rtx: { ssrc: 2002 } }], 'SSRC and RTX SSRC from the FID group');
  t.equal(video.mid, '1');
  t.equal(video.rtcp?.cname, 'c');
});

t.test('header extensions: only ids that mean the same in the worker survive', async (t) => {
  const id = (uri: string) => router.headerExtensions!.find((h) => h.uri === uri)!.preferredId;
  t.ok(consistentId('urn:ietf:params:rtp-hdrext:sdes:mid', id('urn:ietf:params:rtp-hdrext:sdes:mid'), router), 'the router\'s own id: kept');
  t.notOk(consistentId('urn:ietf:params:rtp-hdrext:sdes:mid', 4, router), 'Chrome\'s mid (4) is the worker\'s abs-send-time: dropped');
  t.ok(consistentId('urn:3gpp:video-orientation', 13, router), 'an id the worker never writes (Chrome\'s video-orientation, 13): kept');
  const offer = parseOffer(CHROME_OFFER);
  const video = producerParameters(offer.sections[1], router);
  const used = new Map<number, string>();
  for (const h of video.headerExtensions ?? []) used.set(h.id, h.uri);
  const caps = clientRtpCapabilities(offer, router);
  for (const h of caps.headerExtensions ?? []) {
    t.ok(!used.has(h.preferredId) || used.get(h.preferredId) === h.uri, `consumer id ${h.preferredId} (${h.uri}) means the same on the client's m-lines`);
  }
  t.ok((caps.codecs ?? []).some((c) => c.mimeType === 'video/VP8'), 'the client can receive VP8');
});

t.test('a receive-only client (data channel only) gets the mandatory-to-implement codecs', async (t) => {
  const dataOnly = CHROME_OFFER.split('m=audio')[0].replace('a=group:BUNDLE 0 1 2', 'a=group:BUNDLE 2') + 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 7A:4E\r\na=setup:actpass\r\na=mid:2\r\na=sctp-port:5000\r\n';
  const caps = clientRtpCapabilities(parseOffer(dataOnly), router);
  t.same((caps.codecs ?? []).map((c) => c.mimeType).sort(), ['audio/opus', 'video/VP8'], 'every codec of the router');
});

t.test('simulcast RIDs become encodings, lowest first as listed', async (t) => {
  const m = sdpTransform.parse('v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n').media[0];
  t.same(encodingsOf(m), [{ rid: 'q' }, { rid: 'h' }, { rid: 'f' }]);
});

// Chrome's simulcast publish (sendEncodings with rids l0, l1, l2): no SSRC lines, RID header
// extensions under Chrome's ids 10 and 11, abs-capture-time offered under 10's neighbour 12.
const SIMULCAST_VIDEO = [
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'c=IN IP4 0.0.0.0', 'a=mid:1', 'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id', 'a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
  'a=extmap:12 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay',
  'a=sendonly', 'a=msid:s v', 'a=rtcp-mux', 'a=rtcp-rsize', 'a=rtpmap:96 VP8/90000', 'a=rtcp-fb:96 nack', 'a=rtcp-fb:96 nack pli',
  'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96', 'a=rid:l0 send', 'a=rid:l1 send', 'a=rid:l2 send', 'a=simulcast:send l0;l1;l2',
].join('\r\n');

t.test('a Chrome simulcast offer: RID layers, the RID extensions kept under Chrome\'s ids', async (t) => {
  const offer = parseOffer(CHROME_OFFER.replace(/m=video[\s\S]*?(?=m=application)/, `${SIMULCAST_VIDEO}\r\n`));
  const video = producerParameters(offer.sections[1], router);
  t.same(video.encodings, [{ rid: 'l0' }, { rid: 'l1' }, { rid: 'l2' }], 'three layers, lowest first');
  const exts = new Map((video.headerExtensions ?? []).map((h) => [h.uri, h.id]));
  t.equal(exts.get('urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id'), 10, 'RID under Chrome\'s 10: the worker only reads it, and never writes 10');
  t.equal(exts.get('urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id'), 11, 'repair RID under 11');
  t.notOk(exts.has('urn:ietf:params:rtp-hdrext:sdes:mid'), 'mid under 4 (the worker\'s abs-send-time) stays out');
  t.notOk(exts.has('http://www.webrtc.org/experiments/rtp-hdrext/playout-delay'), 'playout-delay is never taken from a publisher (the worker would write it under 11)');
  t.notOk(consistentId('urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id', 4, router), 'a RID under an id the worker writes (4, abs-send-time) is dropped');
  const caps = clientRtpCapabilities(offer, router);
  const ids = new Map((caps.headerExtensions ?? []).map((h) => [h.preferredId, h.uri]));
  t.notOk([...ids.values()].some((u) => /stream-id/.test(u)), 'consumer m-lines name no RID (the worker never writes one)');
  t.notOk(ids.has(10) || ids.has(11), 'nor anything under the client\'s RID ids');
});

t.test('an offer aligned to joined.header_extensions keeps every extension, transport-cc too', async (t) => {
  const ids = clientExtensionIds(router);
  t.equal(ids['http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01'], 5, 'the worker\'s transport-cc id');
  t.notOk('http://www.webrtc.org/experiments/rtp-hdrext/playout-delay' in ids, 'nothing the SFU does not take from publishers');
  t.notOk('urn:mediasoup:params:rtp-hdrext:packet-id' in ids, 'nor mediasoup\'s internal one');
  const chrome = CHROME_OFFER.replace(/m=video[\s\S]*?(?=m=application)/, `${SIMULCAST_VIDEO}\r\n`);
  const aligned = alignExtensions(chrome, ids);
  t.notMatch(aligned, /playout-delay/, 'an extension the SFU does not list is left out of the offer');
  t.match(aligned, /a=extmap:5 http:\/\/www\.ietf\.org\/id\/draft-holmer-rmcat-transport-wide-cc-extensions-01/);
  t.equal(aligned.split('\r\n').length, chrome.split('\r\n').length - 1, 'nothing else changes (one line less)');
  const offer = parseOffer(aligned);
  const video = producerParameters(offer.sections[1], router);
  const audio = producerParameters(offer.sections[0], router);
  const uris = (p: typeof video) => new Map((p.headerExtensions ?? []).map((h) => [h.uri, h.id]));
  t.same(Object.fromEntries(uris(video)), {
    'urn:ietf:params:rtp-hdrext:sdes:mid': 1,
    'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id': 2,
    'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id': 3,
  }, 'video: mid and the RIDs, each under the worker\'s id (the simulcast offer has no others)');
  t.equal(uris(audio).get('http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01'), 5, 'audio: transport-cc kept (the publisher gets feedback)');
  t.equal(uris(audio).get('http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time'), 4, 'abs-send-time kept');
  t.equal(uris(audio).get('urn:ietf:params:rtp-hdrext:ssrc-audio-level'), 6, 'audio-level kept');
  const caps = clientRtpCapabilities(offer, router);
  for (const h of caps.headerExtensions ?? []) t.equal(h.preferredId, ids[h.uri], `consumers carry ${h.uri} under the same id as the client's m-lines`);
});

t.test('alignExtensions: directions and line endings kept, unknown URIs dropped', async (t) => {
  const ids = { 'urn:a': 3, 'urn:b': 7 };
  t.equal(alignExtensions('v=0\na=extmap:1/sendonly urn:a\na=extmap:2 urn:c\na=extmap:9 urn:b attr\n', ids), 'v=0\na=extmap:3/sendonly urn:a\na=extmap:7 urn:b attr\n');
  t.equal(alignExtensions('v=0\r\na=mid:0\r\n', ids), 'v=0\r\na=mid:0\r\n', 'no extmap: unchanged');
  t.equal(alignExtensions('v=0\r\na=extmap:1 constructor\r\n', ids), 'v=0\r\n', 'a URI named like an Object property is not "listed"');
});

t.test('bad offers name what is missing', async (t) => {
  t.throws(() => parseOffer('v=0\r\n'), /no m-line/);
  t.throws(() => parseOffer(CHROME_OFFER.replace(/a=fingerprint:.*\r\n/, '')), /no DTLS fingerprint/);
  const noSsrc = parseOffer(CHROME_OFFER.replace(/a=ssrc[^\r]*\r\n/g, ''));
  t.throws(() => producerParameters(noSsrc.sections[1], router), /m-line 1: it sends but names no SSRC/);
  const vp9Only = parseOffer(CHROME_OFFER.replace('m=video 9 UDP/TLS/RTP/SAVPF 96 97 98', 'm=video 9 UDP/TLS/RTP/SAVPF 98').replace(/a=rtpmap:96[^\r]*\r\n|a=rtpmap:97[^\r]*\r\n|a=fmtp:97[^\r]*\r\n/g, ''));
  t.throws(() => producerParameters(vp9Only.sections[1], router), /none of its video codecs \(video\/VP9\) is one the SFU forwards/);
});

t.test('the answer: ICE-lite, DTLS server, one BUNDLE, recvonly for what the client sends', async (t) => {
  const offer = parseOffer(CHROME_OFFER);
  const local = { ice: { usernameFragment: 'u', password: 'p' }, candidates: [{ foundation: 'f', priority: 1, ip: '10.0.0.1', address: '10.0.0.1', protocol: 'udp' as const, port: 40000, type: 'host' as const }], fingerprints: [{ algorithm: 'sha-256' as const, value: 'AA:BB' }], sctp: { port: 5000, OS: 1024, MIS: 1024, maxMessageSize: 262144 } as unknown as mediasoup.types.SctpParameters };
  const sdp = writeDescription('answer', 2, local, [
    { mid: '0', kind: 'audio', role: 'receive', rtp: producerParameters(offer.sections[0], router), offered: offer.sections[0].media },
    { mid: '1', kind: 'video', role: 'receive', rtp: producerParameters(offer.sections[1], router), offered: offer.sections[1].media },
    { mid: '2', kind: 'application', role: 'data' },
  ]);
  const parsed = sdpTransform.parse(sdp);
  t.equal(parsed.icelite, 'ice-lite');
  t.same(parsed.groups, [{ type: 'BUNDLE', mids: '0 1 2' }]);
  t.same(parsed.media.map((m) => [m.mid, m.direction ?? null, m.setup]), [['0', 'recvonly', 'passive'], ['1', 'recvonly', 'passive'], ['2', null, 'passive']]);
  t.match(sdp, /a=candidate:f 1 udp 1 10\.0\.0\.1 40000 typ host/, 'the SFU\'s one candidate, on its address');
  t.match(sdp, /a=sctp-port:5000/);
});

t.test('DCEP open: the label, or nothing for anything else', async (t) => {
  const label = Buffer.from('chat');
  const open = Buffer.concat([Buffer.from([0x03, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0x00, label.length, 0x00, 0x00]), label]);
  t.equal(dcepOpenLabel(open), 'chat');
  t.equal(dcepOpenLabel(Buffer.from([0x02])), undefined, 'an ACK is not an open');
  t.equal(dcepOpenLabel(Buffer.alloc(3, 3)), undefined, 'truncated');
});
