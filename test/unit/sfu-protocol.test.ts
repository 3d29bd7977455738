// Signaling protocol validation, relay-policy candidate filtering, config parsing and the pure
// helpers of the werift engine (VP8 keyframe detection, REMB encoding).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import t from 'tap';
import { resolveSfuConfig } from '../../src/sfu/config.ts';
import { isVp8KeyframeStart, rembFields } from '../../src/sfu/engine-werift.ts';
import { RelayPolicy } from '../../src/sfu/relay-policy.ts';
import { parseClientMessage, parseServerMessage } from '../../src/webrtc/protocol-validate.ts';
import { MAX_MESSAGE_BYTES, PROTOCOL_VERSION, clientMessageSchemas, serverMessageSchemas } from '../../src/webrtc/protocol.ts';

t.test('every client message type: one valid example parses', async (t) => {
  const examples = [
    { type: 'join', room: 'standup', display: { name: 'Ada' } },
    { type: 'offer', sdp: 'v=0\r\n' },
    { type: 'answer', sdp: 'v=0\r\n' },
    { type: 'ice-candidate', candidate: { candidate: 'candidate:1 1 udp 2 10.0.0.1 5000 typ relay', sdpMid: '0', sdpMLineIndex: 0 } },
    { type: 'ice-candidate', candidate: null },
    { type: 'leave' },
    { type: 'resume', room: 'standup', peer_id: '0123456789ab', resume_token: 'AAAAAAAAAAAAAAAAAAAAAA' },
    { type: 'preferred-layer', peer_id: '0123456789ab', layer: 0 },
  ];
  t.same(new Set(examples.map((e) => e.type)), new Set(Object.keys(clientMessageSchemas)), 'examples cover every type');
  for (const e of examples) t.same(parseClientMessage(JSON.stringify(e)), { ok: true, message: e }, e.type);
});

t.test('malformed, unknown and oversized frames get the right error code', async (t) => {
  const code = (raw: string) => {
    const r = parseClientMessage(raw);
    return r.ok ? 'ok' : r.code;
  };
  t.equal(code('{not json'), 'bad_json');
  t.equal(code('[]'), 'invalid_message');
  t.equal(code('"join"'), 'invalid_message');
  t.equal(code('{"room":"x"}'), 'invalid_message');
  t.equal(code('{"type":"dance"}'), 'unknown_type');
  t.equal(code('{"type":"join"}'), 'invalid_message', 'join without room');
  t.equal(code('{"type":"join","room":"../etc"}'), 'invalid_message', 'room name pattern');
  t.equal(code('{"type":"join","room":"r","extra":1}'), 'invalid_message', 'no additional properties');
  t.equal(code('{"type":"offer","sdp":""}'), 'invalid_message', 'empty sdp');
  t.equal(code('{"type":"ice-candidate","candidate":{"sdpMid":"0"}}'), 'invalid_message');
  t.equal(code(JSON.stringify({ type: 'offer', sdp: 'x'.repeat(MAX_MESSAGE_BYTES) })), 'too_large');
  t.equal(code('{"type":"preferred-layer","peer_id":"0123456789ab","layer":-1}'), 'invalid_message', 'a negative layer');
  t.equal(code('{"type":"preferred-layer","peer_id":"0123456789ab","layer":1.5}'), 'invalid_message', 'a fractional layer');
  t.equal(code('{"type":"preferred-layer","peer_id":"0123456789ab","layer":16}'), 'invalid_message', 'above MAX_LAYER');
  t.equal(code('{"type":"preferred-layer","peer_id":"someone","layer":1}'), 'invalid_message', 'not a peer id');
  t.equal(code('{"type":"turn-credentials","urls":["turn:x"],"username":"u","credential":"c","ttl":1}'), 'unknown_type', 'server messages are not client messages');
});

t.test('every server message type validates against its schema', async (t) => {
  const creds = { urls: ['turn:10.91.0.1:3478?transport=udp'], username: '1800000000:ns', credential: 'abc=', ttl: 600 };
  const examples = [
    { type: 'offer', sdp: 'v=0\r\n' },
    { type: 'answer', sdp: 'v=0\r\n' },
    { type: 'ice-candidate', candidate: { candidate: 'candidate:1 1 udp 2 10.92.0.2 20000 typ host', sdpMid: '0', sdpMLineIndex: 0 } },
    { type: 'joined', protocol_version: PROTOCOL_VERSION, room: 'r', peer_id: 'a1', peers: [{ peer_id: 'b2', display: { name: 'B' } }], resume_token: 'AAAAAAAAAAAAAAAAAAAAAA', simulcast: true, header_extensions: { 'urn:ietf:params:rtp-hdrext:sdes:mid': 1 } },
    { type: 'resumed', room: 'r', peer_id: 'a1', peers: [] },
    { type: 'peer-joined', peer_id: 'b2', display: { name: 'B' }, subject: 'user-1' },
    { type: 'peer-left', peer_id: 'b2' },
    { type: 'turn-credentials', ...creds },
    { type: 'refresh-credentials', ...creds },
    { type: 'server-draining', deadline_s: 30 },
    { type: 'room-closed', room: 'r' },
    { type: 'error', code: 'draining', message: 'go elsewhere' },
  ];
  t.same(new Set(examples.map((e) => e.type)), new Set(Object.keys(serverMessageSchemas)));
  for (const e of examples) t.ok(parseServerMessage(JSON.stringify(e)).ok, e.type);
  t.notOk(parseServerMessage('{"type":"error","code":"nope","message":"x"}').ok, 'error codes are an enum');
  t.notOk(parseServerMessage(JSON.stringify({ type: 'joined', protocol_version: 1, room: 'r', peer_id: 'a', peers: [], header_extensions: { u: 15 } })).ok, 'header extension ids are one-byte ids (1-14)');
});

t.test('relay policy: only TURN relay addresses pass, in trickle and in SDP', async (t) => {
  const policy = new RelayPolicy(['10.92.0.1']);
  t.ok(policy.allowsCandidate('candidate:1 1 udp 41885695 10.92.0.1 49160 typ relay raddr 10.91.0.2 rport 5000'));
  t.notOk(policy.allowsCandidate('candidate:2 1 udp 2122260223 10.91.0.2 5000 typ host generation 0'));
  t.notOk(policy.allowsCandidate('candidate:3 1 udp 1686052607 203.0.113.9 5000 typ srflx raddr 10.91.0.2 rport 5000'));
  t.notOk(policy.allowsCandidate('garbage'), 'unparseable candidates are dropped');
  t.notOk(policy.allowsCandidate('candidate:4 1 udp 1 abcd.local 5000 typ host'), 'mDNS names are not relay addresses');
  const sdp = [
    'v=0',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'a=candidate:2 1 udp 2122260223 10.91.0.2 5000 typ host',
    'a=candidate:1 1 udp 41885695 10.92.0.1 49160 typ relay raddr 10.91.0.2 rport 5000',
    'a=candidate:3 1 udp 1686052607 203.0.113.9 5000 typ srflx raddr 10.91.0.2 rport 5000',
    'a=end-of-candidates',
    '',
  ].join('\r\n');
  const filtered = policy.filterSdp(sdp);
  t.equal(filtered.dropped, 2);
  t.match(filtered.sdp, /typ relay/);
  t.notMatch(filtered.sdp, /typ host|typ srflx/);
});

t.test('VP8 keyframe start detection (RFC 7741)', async (t) => {
  t.ok(isVp8KeyframeStart(Buffer.from([0x10, 0x00])), 'S=1 PID=0, P=0');
  t.notOk(isVp8KeyframeStart(Buffer.from([0x10, 0x01])), 'interframe (P=1)');
  t.notOk(isVp8KeyframeStart(Buffer.from([0x00, 0x00])), 'not a partition start');
  t.ok(isVp8KeyframeStart(Buffer.from([0x90, 0x80, 0x81, 0x23, 0x00])), 'X, I with 15-bit picture id');
  t.ok(isVp8KeyframeStart(Buffer.from([0x90, 0xe0, 0x12, 0x05, 0x40, 0x00])), 'X, I 7-bit, L, T');
  t.notOk(isVp8KeyframeStart(Buffer.from([0x90, 0x80, 0x12, 0x01])), 'X, I, interframe');
  t.notOk(isVp8KeyframeStart(Buffer.alloc(0)));
});

t.test('REMB exponent/mantissa', async (t) => {
  for (const bitrate of [0, 1000, 262143, 262144, 1_500_000, 20_000_000]) {
    const { brExp, brMantissa } = rembFields(bitrate);
    t.ok(brMantissa < 1 << 18, 'mantissa fits 18 bits');
    const decoded = brMantissa * 2 ** brExp;
    t.ok(decoded <= bitrate && bitrate - decoded < 2 ** brExp, `${bitrate} ~ ${decoded}`);
  }
});

t.test('SFU config: validated, secrets read from files and never printed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'osfu-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 's'), 'super-secret-turn\n');
  writeFileSync(join(dir, 'k'), 'super-secret-key\n');
  const file = {
    namespace: 'myapp',
    listen_ip: '10.0.0.1',
    signal_port: 30000,
    media_port_min: 20000,
    media_port_max: 20499,
    turn_urls: ['turn:203.0.113.1:3478?transport=udp'],
    turn_relay_ips: ['10.0.0.2', '10.0.0.3'],
    turn_secret_file: join(dir, 's'),
    internal_key_file: join(dir, 'k'),
  };
  const config = resolveSfuConfig(file);
  t.equal(config.turnSecret.reveal(), 'super-secret-turn');
  t.equal(config.credentialTtl, 600, 'default TTL');
  const printed = JSON.stringify(config) + inspect(config) + String(config.internalKey);
  t.notMatch(printed, /super-secret/, 'no secret in printed forms');
  t.throws(() => resolveSfuConfig({ ...file, listen_ip: '0.0.0.0/0' }), /invalid SFU config/);
  t.throws(() => resolveSfuConfig({ ...file, media_port_min: 30000 }), /media_port_min/);
  t.throws(() => resolveSfuConfig({ ...file, turn_relay_ips: [] }), /invalid SFU config/);
  t.throws(() => resolveSfuConfig({ ...file, turn_secret: 'inline' } as never), /additional properties/);
  t.equal(config.mediasoupConsumersPerWorker, 500, "mediasoup: a room spills to the next worker at 500 consumers (mediasoup's own figure) by default");
  t.equal(resolveSfuConfig({ ...file, mediasoup_consumers_per_worker: 4 }).mediasoupConsumersPerWorker, 4);
  t.throws(() => resolveSfuConfig({ ...file, mediasoup_consumers_per_worker: 0 }), /invalid SFU config: \/mediasoup_consumers_per_worker must be >= 1/);
});
