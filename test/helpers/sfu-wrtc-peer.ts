// A Node WebRTC peer (@roamhq/wrtc = libwebrtc) for SFU tests and the benchmark, run inside the
// client namespace. It follows the seed's client flow: credentials from the gateway, signaling
// WebSocket, one RTCPeerConnection, polite side of perfect negotiation.
// argv[2]: JSON PeerOptions. Events are JSON lines on stdout; commands JSON lines on stdin:
//   {"cmd":"stats"} -> {"event":"stats",...}   {"cmd":"send","text":"..."}   {"cmd":"leave"}
//   {"cmd":"join"} -> {"event":"joining"} (with the `hold` option: start now)
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { alignExtensions } from '../../src/client/extmap.ts';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const wrtc: any = require('@roamhq/wrtc');

interface PeerOptions {
  gateway: string;
  /** A JWT the gateway accepts (NetnsLab.token). */
  token: string;
  room: string;
  name: string;
  publish?: boolean;
  width?: number;
  height?: number;
  fps?: number;
  /** Cap the published video's bitrate (bit/s, sendEncodings maxBitrate), for equal load across SFUs. */
  maxVideoBitrate?: number;
  /** 'relay' (the product), 'all' (host/srflx/relay offered), 'host-only' (no TURN at all). */
  policy?: 'relay' | 'all' | 'host-only';
  /** Reconnect through the gateway on server-draining. */
  reconnect?: boolean;
  /** Start up, then wait for {"cmd":"join"} before media and credentials (a test can spawn early). */
  hold?: boolean;
  /**
   * Offer in the SFU's header-extension ids (`joined.header_extensions`), as the browser client
   * does (src/client/extmap.ts): mediasoup then gives this publisher transport-cc feedback. Falls
   * back to the offer as made if libwebrtc refuses it (event `extmap-refused`).
   */
  alignExtensions?: boolean;
}

const opts = JSON.parse(process.argv[2]) as PeerOptions;
const emit = (event: string, fields: Record<string, unknown> = {}) => process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + '\n');
const start = Date.now();

// ---- media sources (shared by successive connections) ----
const width = opts.width ?? 320;
const height = opts.height ?? 240;
let videoTrack: unknown;
let audioTrack: unknown;
const timers: NodeJS.Timeout[] = [];
/** The sources' frame timers, started when the peer connects (after the hold, if any). */
const mediaStarts: (() => void)[] = [];
if (opts.publish) {
  const videoSource = new wrtc.nonstandard.RTCVideoSource();
  videoTrack = videoSource.createTrack();
  const frame = new Uint8ClampedArray(width * height * 1.5);
  // Camera-like entropy: a flat synthetic image compresses to ~50 kbit/s, which would make any
  // forwarding figure meaningless. Luma comes from a noise pool read at a moving offset.
  const pool = new Uint8ClampedArray(width * height * 2);
  for (let i = 0; i < pool.length; i++) pool[i] = 64 + ((Math.random() * 128) | 0);
  let n = 0;
  mediaStarts.push(() => timers.push(
    setInterval(() => {
      n++;
      const offset = ((n * 7919) % (width * height)) & ~1;
      frame.set(pool.subarray(offset, offset + width * height), 0);
      const x0 = (n * 8) % width;
      for (let y = 0; y < height; y++) frame.fill(235, y * width + x0, y * width + Math.min(width, x0 + 24));
      frame.fill(128, width * height);
      videoSource.onFrame({ width, height, data: frame });
    }, 1000 / (opts.fps ?? 15)),
  ));
  const audioSource = new wrtc.nonstandard.RTCAudioSource();
  audioTrack = audioSource.createTrack();
  const samples = new Int16Array(480);
  let phase = 0;
  mediaStarts.push(() => timers.push(
    setInterval(() => {
      for (let i = 0; i < samples.length; i++) samples[i] = Math.round(8000 * Math.sin((phase++ * 2 * Math.PI * 440) / 48000));
      audioSource.onData({ samples, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
    }, 10),
  ));
}

// ---- receive-side counters, per remote peer (msid stream id = publishing peer id) ----
const received: Record<string, { frames: number; firstFrameAt?: number; audioFrames: number; audioEnergy: number }> = {};
const sinks: { stop(): void }[] = [];
const sinksByTrack = new Map<unknown, { stop(): void }>();
let joinedAt = 0;

function counters(peer: string) {
  return (received[peer] ??= { frames: 0, audioFrames: 0, audioEnergy: 0 });
}

let session: Session | undefined;
/** Reconnect attempts answered with 1013 so far (reset once a session has joined). */
let retries = 0;
let turn: { urls: string[]; username: string; credential: string } | undefined;

class Session {
  ws: WebSocket;
  pc: any;
  queuedRemote: any[] = [];
  queuedLocal: unknown[] = [];
  joined = false;
  peerId = '';
  channel: any;
  closed = false;

  constructor() {
    const iceServers = opts.policy === 'host-only' || !turn ? [] : [{ urls: turn.urls, username: turn.username, credential: turn.credential }];
    this.pc = new wrtc.RTCPeerConnection({ iceServers, iceTransportPolicy: opts.policy === 'relay' || !opts.policy ? 'relay' : 'all' });
    this.channel = this.pc.createDataChannel('chat');
    this.channel.onmessage = (e: { data: string }) => emit('data', { text: String(e.data) });
    if (opts.publish) {
      this.pc.addTransceiver(videoTrack, { direction: 'sendonly', ...(opts.maxVideoBitrate ? { sendEncodings: [{ maxBitrate: opts.maxVideoBitrate }] } : {}) });
      this.pc.addTransceiver(audioTrack, { direction: 'sendonly' });
    }
    this.pc.onicecandidate = (e: { candidate: { toJSON(): unknown } | null }) => {
      const candidate = e.candidate ? e.candidate.toJSON() : null;
      if (this.joined) this.send({ type: 'ice-candidate', candidate });
      else this.queuedLocal.push(candidate);
    };
    this.pc.onconnectionstatechange = () => emit('pc-state', { state: this.pc.connectionState });
    this.pc.ontrack = (e: { track: any; streams: { id: string }[] }) => {
      const from = e.streams[0]?.id ?? 'unknown';
      const c = counters(from);
      emit('track', { from, kind: e.track.kind });
      // A receiver whose m-line the SFU recycled for another publisher may fire ontrack again with
      // the same track and a new stream id: its frames now count for the new publisher only.
      const stale = sinksByTrack.get(e.track);
      if (stale) {
        stale.stop();
        sinks.splice(sinks.indexOf(stale), 1);
      }
      if (e.track.kind === 'video') {
        const sink = new wrtc.nonstandard.RTCVideoSink(e.track);
        sink.onframe = () => {
          if (c.frames++ === 0) {
            c.firstFrameAt = Date.now();
            emit('first-frame', { from, ms: Date.now() - joinedAt });
          }
        };
        sinks.push(sink);
        sinksByTrack.set(e.track, sink);
      } else {
        const sink = new wrtc.nonstandard.RTCAudioSink(e.track);
        sink.ondata = (d: { samples: Int16Array }) => {
          c.audioFrames++;
          let sum = 0;
          for (const s of d.samples) sum += s * s;
          c.audioEnergy += sum / d.samples.length / 32768 / 32768;
        };
        sinks.push(sink);
        sinksByTrack.set(e.track, sink);
      }
    };
    const wsUrl = `${opts.gateway.replace(/^http/, 'ws')}/v1/webrtc/signal?room=${encodeURIComponent(opts.room)}`;
    this.ws = new WebSocket(wsUrl, ['Bearer', opts.token]);
    this.ws.on('open', () => this.send({ type: 'join', room: opts.room, display: { name: opts.name } }));
    this.ws.on('message', (data) => {
      const msg = JSON.parse(data.toString());
      this.onMessage(msg).catch((e: Error) => emit('negotiation-error', { type: msg.type, message: e.message }));
    });
    this.ws.on('close', (code) => {
      emit('ws-closed', { code });
      // As the browser client does (src/client/orama-webrtc.ts): a reconnect the gateway answers
      // with 1013 (its SFU choice was still the draining one) is retried with backoff, 5 times.
      if (code === 1013 && opts.reconnect && this === session && retries < 5 && !this.closed) {
        const delay = 200 * 2 ** retries++;
        setTimeout(() => { if (this === session) session = new Session(); }, delay);
      }
    });
    this.ws.on('error', (e) => emit('ws-error', { message: e.message }));
  }

  send(message: unknown) {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(message));
  }

  async onMessage(msg: any) {
    switch (msg.type) {
      case 'joined': {
        this.joined = true;
        retries = 0;
        this.peerId = msg.peer_id;
        joinedAt = Date.now();
        emit('joined', { peer_id: msg.peer_id, peers: msg.peers.length });
        for (const c of this.queuedLocal.splice(0)) this.send({ type: 'ice-candidate', candidate: c });
        const offer = await this.pc.createOffer();
        const ids = msg.header_extensions as Record<string, number> | undefined;
        if (opts.alignExtensions && ids) {
          await this.pc.setLocalDescription({ type: 'offer', sdp: alignExtensions(offer.sdp, ids) }).catch(async (e: Error) => {
            emit('extmap-refused', { message: e.message });
            await this.pc.setLocalDescription(offer);
          });
        } else await this.pc.setLocalDescription(offer);
        this.send({ type: 'offer', sdp: this.pc.localDescription.sdp });
        break;
      }
      case 'offer': {
        if (this.pc.signalingState !== 'stable') await this.pc.setLocalDescription({ type: 'rollback' });
        await this.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        await this.flushRemote();
        const answer = await this.pc.createAnswer();
        await this.pc.setLocalDescription(answer);
        this.send({ type: 'answer', sdp: this.pc.localDescription.sdp });
        break;
      }
      case 'answer':
        await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        await this.flushRemote();
        break;
      case 'ice-candidate':
        if (!msg.candidate) break;
        if (this.pc.remoteDescription) await this.pc.addIceCandidate(msg.candidate).catch((e: Error) => emit('candidate-error', { message: e.message }));
        else this.queuedRemote.push(msg.candidate);
        break;
      case 'turn-credentials':
      case 'refresh-credentials':
        emit(msg.type, { username: msg.username, ttl: msg.ttl, expires_in_s: Number(msg.username.split(':')[0]) - Date.now() / 1000 });
        turn = { urls: msg.urls, username: msg.username, credential: msg.credential };
        if (msg.type === 'refresh-credentials' && opts.policy !== 'host-only') {
          const config = this.pc.getConfiguration();
          this.pc.setConfiguration({ ...config, iceServers: [{ urls: msg.urls, username: msg.username, credential: msg.credential }] });
        }
        break;
      case 'server-draining':
        emit('server-draining', { deadline_s: msg.deadline_s });
        if (opts.reconnect) {
          this.close();
          session = new Session();
        }
        break;
      default:
        emit(msg.type, msg.type === 'error' ? { code: msg.code, message: msg.message } : { peer_id: msg.peer_id });
    }
  }

  async flushRemote() {
    for (const c of this.queuedRemote.splice(0)) await this.pc.addIceCandidate(c).catch(() => {});
  }

  async stats() {
    const report = await this.pc.getStats();
    let selected: { local?: string; remote?: string; state?: string } | undefined;
    const byId = new Map<string, any>();
    report.forEach((s: any) => byId.set(s.id, s));
    let inboundVideoPackets = 0;
    let inboundAudioPackets = 0;
    let packetsLost = 0;
    let framesDecoded = 0;
    for (const s of byId.values()) {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        selected = { local: byId.get(s.localCandidateId)?.candidateType, remote: byId.get(s.remoteCandidateId)?.candidateType, state: s.state };
      }
      if (s.type === 'inbound-rtp') {
        if (s.kind === 'video') {
          inboundVideoPackets += s.packetsReceived ?? 0;
          framesDecoded += s.framesDecoded ?? 0;
        } else inboundAudioPackets += s.packetsReceived ?? 0;
        packetsLost += s.packetsLost ?? 0;
      }
    }
    // m-lines of the current SDP (the SFU's last offer or answer): every one, and those not
    // rejected (port 0 = an m-line the SFU stopped); transceivers libwebrtc still holds.
    const mlines = [...String(this.pc.remoteDescription?.sdp ?? '').matchAll(/^m=\S+ (\d+)/gm)].map((m) => Number(m[1]));
    const sdp = { mlines: mlines.length, activeMlines: mlines.filter((port) => port !== 0).length, transceivers: this.pc.getTransceivers().length };
    return { peer_id: this.peerId, connection: this.pc.connectionState, selected, inboundVideoPackets, inboundAudioPackets, packetsLost, framesDecoded, received, sdp };
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.send({ type: 'leave' });
    this.ws.close();
    this.pc.close();
  }
}

let releaseHold: () => void = () => {};
const held = opts.hold ? new Promise<void>((resolve) => (releaseHold = resolve)) : Promise.resolve();

async function main() {
  await held;
  for (const startMedia of mediaStarts) startMedia();
  if (opts.policy !== 'host-only') {
    const res = await fetch(`${opts.gateway}/v1/webrtc/turn/credentials`, { method: 'POST', headers: { authorization: `Bearer ${opts.token}` } });
    if (!res.ok) throw new Error(`credentials: HTTP ${res.status}`);
    turn = (await res.json()) as typeof turn;
  }
  session = new Session();
}

const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const cmd = JSON.parse(line) as { cmd: string; text?: string; id?: number };
  if (cmd.cmd === 'join') {
    releaseHold();
    emit('joining', { id: cmd.id });
  }
  if (cmd.cmd === 'stats') emit('stats', { id: cmd.id, ...(session ? await session.stats() : {}) });
  if (cmd.cmd === 'send') {
    const ok = session?.channel?.readyState === 'open';
    if (ok) session!.channel.send(cmd.text);
    emit('sent', { id: cmd.id, ok });
  }
  if (cmd.cmd === 'leave') {
    session?.close();
    for (const t of timers) clearInterval(t);
    for (const s of sinks) s.stop();
    emit('left', { id: cmd.id });
    setTimeout(() => process.exit(0), 100);
  }
});
rl.on('close', () => process.exit(0));

main().catch((e) => {
  emit('fatal', { message: (e as Error).message, after_ms: Date.now() - start });
  process.exit(1);
});
