// N receive-only subscribers in one process (werift: no decoding, so hundreds fit on a small
// machine), each with its own RTCPeerConnection relayed through coturn and its own signaling
// WebSocket through the gateway. Run inside the client namespace by bench/sfu.ts.
// argv[2]: JSON {gateway, room, n, holdS, rampMs}. Prints one JSON summary line at the end.
import { RTCPeerConnection, useOPUS, useVP8, type RtpPacket } from 'werift';
import WebSocket from 'ws';
import { isVp8KeyframeStart } from '../src/sfu/engine-werift.ts';

// tokens: one per subscriber (a subject of its own: the gateway rate-limits credentials per subject).
const opts = JSON.parse(process.argv[2]) as { gateway: string; tokens: string[]; room: string; n: number; holdS: number; rampMs: number };

interface StreamCount {
  first?: number;
  max?: number;
  received: number;
}
/** Milliseconds from the start of the credentials request to each step, where reached. */
interface Phases {
  credentials?: number;
  joined?: number;
  /** The SFU's offer carrying the publisher's tracks. */
  tracksOffer?: number;
  connected?: number;
  firstVideo?: number;
}
interface Subscriber {
  started: number;
  firstKeyframeMs?: number;
  phases: Phases;
  video: StreamCount;
  audio: StreamCount;
  close(): void;
}

function count(stream: StreamCount, seq: number): void {
  // extend the 16-bit sequence number relative to the highest seen
  if (stream.first === undefined) {
    stream.first = seq;
    stream.max = seq;
  } else {
    const base = stream.max! & ~0xffff;
    let ext = base + seq;
    if (ext < stream.max! - 0x8000) ext += 0x10000;
    else if (ext > stream.max! + 0x8000) ext -= 0x10000;
    if (ext > stream.max!) stream.max = ext;
  }
  stream.received++;
}

async function subscriber(index: number): Promise<Subscriber> {
  const started = Date.now();
  // The gateway rate-limits credentials per subject (429 with retry_after): wait and ask again, bounded.
  let turn: { urls: string[]; username: string; credential: string } | undefined;
  for (let attempt = 0; attempt < 30 && !turn; attempt++) {
    const res = await fetch(`${opts.gateway}/v1/webrtc/turn/credentials`, { method: 'POST', headers: { authorization: `Bearer ${opts.tokens[index % opts.tokens.length]}` } });
    if (res.ok) turn = (await res.json()) as { urls: string[]; username: string; credential: string };
    else await new Promise((r) => setTimeout(r, 1000));
  }
  if (!turn) throw new Error(`subscriber ${index}: no TURN credentials from the gateway after 30 attempts`);
  const phases: Phases = { credentials: Date.now() - started };
  const mark = (step: keyof Phases) => {
    phases[step] ??= Date.now() - started;
  };
  const pc = new RTCPeerConnection({
    iceServers: [{ urls: turn.urls[0], username: turn.username, credential: turn.credential }],
    iceTransportPolicy: 'relay',
    iceUseIpv6: false,
    codecs: { audio: [useOPUS()], video: [useVP8()] },
  });
  const sub: Subscriber = {
    started,
    phases,
    video: { received: 0 },
    audio: { received: 0 },
    close: () => {
      // `leave`, as a client does: a socket closed without it keeps the peer on the SFU for its
      // resume grace (10 s), and the next step would start against those.
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'leave' }));
      ws.close();
      void pc.close();
    },
  };
  pc.createDataChannel('chat');
  pc.connectionStateChange.subscribe((state) => {
    if (state === 'connected') mark('connected');
  });
  pc.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      if (track.kind === 'video') {
        mark('firstVideo');
        if (sub.firstKeyframeMs === undefined && isVp8KeyframeStart(rtp.payload)) sub.firstKeyframeMs = Date.now() - started;
        count(sub.video, rtp.header.sequenceNumber);
      } else count(sub.audio, rtp.header.sequenceNumber);
    });
  });
  const ws = new WebSocket(`${opts.gateway.replace(/^http/, 'ws')}/v1/webrtc/signal?room=${opts.room}`, ['Bearer', opts.tokens[index % opts.tokens.length]]);
  // A refused upgrade (the gateway's 503 while its only SFU is not healthy) is this subscriber's
  // failure, counted as no keyframe, not the swarm's end.
  ws.on('error', (e) => process.stderr.write(`sub${index}: signaling: ${e.message}\n`));
  const pending: unknown[] = [];
  let joined = false;
  pc.onIceCandidate.subscribe((c) => {
    const candidate = c ? c.toJSON() : null;
    if (joined) ws.send(JSON.stringify({ type: 'ice-candidate', candidate }));
    else pending.push(candidate);
  });
  ws.on('open', () => ws.send(JSON.stringify({ type: 'join', room: opts.room, display: { name: `sub${index}` } })));
  ws.on('message', async (data) => {
    const msg = JSON.parse(data.toString());
    try {
      if (msg.type === 'joined') {
        mark('joined');
        joined = true;
        for (const c of pending.splice(0)) ws.send(JSON.stringify({ type: 'ice-candidate', candidate: c }));
        await pc.setLocalDescription(await pc.createOffer());
        ws.send(JSON.stringify({ type: 'offer', sdp: pc.localDescription!.sdp }));
      } else if (msg.type === 'offer') {
        if (/^m=video/m.test(msg.sdp)) mark('tracksOffer');
        await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        await pc.setLocalDescription(await pc.createAnswer());
        ws.send(JSON.stringify({ type: 'answer', sdp: pc.localDescription!.sdp }));
      } else if (msg.type === 'answer') {
        await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      } else if (msg.type === 'ice-candidate' && msg.candidate) {
        await pc.addIceCandidate(msg.candidate);
      }
    } catch (e) {
      process.stderr.write(`sub${index}: ${(e as Error).message}\n`);
    }
  });
  return sub;
}

const subs: Subscriber[] = [];
process.stdout.write(JSON.stringify({ event: 'ramp-start', t: Date.now() }) + '\n');
for (let i = 0; i < opts.n; i++) {
  subs.push(await subscriber(i));
  if (opts.rampMs) await new Promise((r) => setTimeout(r, opts.rampMs));
}
process.stdout.write(JSON.stringify({ event: 'all-joined', t: Date.now() }) + '\n');
// wait until everyone has a keyframe (bounded), then hold for the measurement window
const until = Date.now() + 30000;
while (Date.now() < until && subs.some((s) => s.firstKeyframeMs === undefined)) await new Promise((r) => setTimeout(r, 200));
const windowStart = subs.map((s) => ({ v: { ...s.video }, a: { ...s.audio } }));
process.stdout.write(JSON.stringify({ event: 'window-start', t: Date.now() }) + '\n');
await new Promise((r) => setTimeout(r, opts.holdS * 1000));
const loss = (s: StreamCount, before: StreamCount) => {
  if (s.first === undefined || before.max === undefined) return { expected: 0, received: 0 };
  return { expected: s.max! - before.max, received: s.received - before.received };
};
const summary = subs.map((s, i) => ({
  ttffMs: s.firstKeyframeMs ?? null,
  phases: s.phases,
  video: loss(s.video, windowStart[i].v),
  audio: loss(s.audio, windowStart[i].a),
}));
process.stdout.write(JSON.stringify({ event: 'summary', t: Date.now(), subscribers: summary }) + '\n');
// Leave a second after the summary: bench/sfu.ts reads the SFU's counters on that line, and
// mediasoup's counters keep a closed stream only as of its last sample (a consumer closed before
// the read would count nothing since the window began).
await new Promise((r) => setTimeout(r, 1000));
for (const s of subs) s.close();
setTimeout(() => process.exit(0), 500);
