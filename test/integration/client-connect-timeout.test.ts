// The browser client's connect timeout (CONNECT_TIMEOUT_MS, src/client/orama-webrtc.ts): a user
// whose SFU said `joined` but never answered the offer must not sit in a call that never connects
// and never fails — the client gives that peer connection up and joins again on a new socket.
//
// STAND-IN: the gateway + SFU here are a node:http + ws server on 127.0.0.1, because no real part
// can leave an offer unanswered on purpose (the project's rule: a stand-in only for a fault a real
// part cannot produce). Everything else is real: headless Debian Chromium, the demo page and the
// client bundle as the gateway serves them (clientAssets()). The stand-in answers the credentials
// request in the gateway's shape and a `join` as the real SFU does for an empty room (`joined`,
// then `turn-credentials`: src/sfu/room.ts, src/sfu/sfu.ts); it ignores every offer and candidate.
// The TURN URL is 127.0.0.1:9 (nothing answers): no traffic leaves loopback.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import t from 'tap';
import { WebSocketServer } from 'ws';
import { clientAssets } from '../../src/client/assets.ts';
import { CONNECT_TIMEOUT_MS } from '../../src/client/orama-webrtc.ts';
import { PROTOCOL_VERSION } from '../../src/webrtc/protocol.ts';
import { CHROMIUM_ARGS, CHROMIUM_BIN, waitEvent, type DemoEvent } from '../helpers/browser.ts';
import { CHROMIUM, requireTool } from '../helpers/sfu-netns.ts';
import { tempDir } from '../helpers/tmp.ts';
import { until } from '../helpers/poll.ts';

requireTool(CHROMIUM, 'chromium');
t.setTimeout(120_000);

type Received = { type: string; at: number; [key: string]: unknown };
/** One signaling socket, as the stand-in saw it. */
interface Signal { room: string | null; received: Received[]; joinedAt?: number; closedAt?: number }
const signals: Signal[] = [];
const credentialAuth: (string | undefined)[] = [];
const credentials = () => ({ urls: ['turn:127.0.0.1:9?transport=udp'], username: `${Math.floor(Date.now() / 1000) + 600}:t`, credential: 'x', ttl: 600 });

const assets = await clientAssets();
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://standin');
  const asset = assets.get(url.pathname.replace(/^\/v1\/webrtc\/client\//, ''));
  if (req.method === 'GET' && url.pathname.startsWith('/v1/webrtc/client/') && asset) {
    res.writeHead(200, { 'content-type': asset.contentType });
    return res.end(asset.body);
  }
  if (req.method === 'POST' && url.pathname === '/v1/webrtc/turn/credentials') {
    credentialAuth.push(req.headers.authorization);
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(credentials()));
  }
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://standin');
  if (url.pathname !== '/v1/webrtc/signal') return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    const signal: Signal = { room: url.searchParams.get('room'), received: [] };
    signals.push(signal);
    ws.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as { type: string; room?: string };
      signal.received.push({ ...message, at: Date.now() });
      if (message.type !== 'join') return; // offer, ice-candidate, leave: never answered
      ws.send(JSON.stringify({ type: 'joined', protocol_version: PROTOCOL_VERSION, room: message.room, peer_id: randomBytes(6).toString('hex'), peers: [], resume_token: randomBytes(16).toString('base64url') }));
      ws.send(JSON.stringify({ type: 'turn-credentials', ...credentials() }));
      signal.joinedAt = Date.now();
    });
    ws.on('close', () => { signal.closedAt = Date.now(); });
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
t.teardown(async () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const browser = await chromium.launch({ executablePath: CHROMIUM_BIN, args: CHROMIUM_ARGS, env: { ...process.env, HOME: tempDir(t, 'connect-timeout-') }, timeout: 30_000 });
t.teardown(() => browser.close());

const hello = (s: Signal | undefined) => s?.received.find((m) => m.type === 'join' || m.type === 'resume');

t.test('an offer the SFU never answers: the client rejoins on a new socket after the connect timeout', async (t) => {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => t.comment(`page error: ${e.message}`));
  await page.goto(`http://127.0.0.1:${port}/v1/webrtc/client/demo.html#room=r1&token=t&name=ann&autojoin=1&publish=0`, { timeout: 15_000 });

  // (1) The user joins: one socket for room r1, a `join` with the name, and `joined` back.
  const first = await until('the first join', 15_000, () => hello(signals[0]) && signals[0], undefined, 50);
  t.equal(first.room, 'r1', 'the signaling URL names the room');
  t.match(hello(first), { type: 'join', room: 'r1', display: { name: 'ann' } }, 'the first hello is a join with the display name');
  t.ok(first.joinedAt, 'the stand-in answered joined');
  await waitEvent(page, 'joined', 0, 10_000);
  // The fault's premise: the client did offer, and the offer stays unanswered.
  await until('the client offer', 10_000, () => first.received.find((m) => m.type === 'offer'), undefined, 50);

  // (2) About CONNECT_TIMEOUT_MS later the client joins again, with fresh credentials and a new
  // peer connection, on a new socket — not a `resume` of the broken peer.
  const second = await until('a second signaling socket with a hello', CONNECT_TIMEOUT_MS + 15_000, () => hello(signals[1]) && signals[1], undefined, 50);
  const gap = hello(second)!.at - first.joinedAt!;
  t.comment(`second join ${gap} ms after the first joined (CONNECT_TIMEOUT_MS = ${CONNECT_TIMEOUT_MS})`);
  t.equal(hello(second)!.type, 'join', 'the client joins afresh (its old peer connection is gone)');
  t.ok(gap >= CONNECT_TIMEOUT_MS - 1000, `not before the connect timeout (gap ${gap} ms)`);
  t.ok(gap < CONNECT_TIMEOUT_MS + 10_000, `soon after the connect timeout (gap ${gap} ms)`);
  t.equal(signals.length, 2, 'exactly one new socket meanwhile');
  t.same(credentialAuth, ['Bearer t', 'Bearer t'], 'fresh TURN credentials fetched for the new peer connection');

  // (3) The page is told why.
  const events = (await page.evaluate(() => (window as any).oramaDemo.events)) as DemoEvent[];
  const reconnecting = events.filter((e) => e.type === 'reconnecting');
  t.equal(reconnecting.length, 1, 'one reconnecting event');
  t.equal(reconnecting[0]?.detail.reason, `media not connected ${CONNECT_TIMEOUT_MS / 1000} s after joining`, 'its reason names the connect timeout');
  t.notOk(events.some((e) => e.type === 'state' && e.detail.connection === 'connected'), 'media never connected');
  await waitEvent(page, 'reconnected', 0, 10_000);

  // (4) The old session is ended, not left dangling: the client said `leave` on the first socket
  // and closed it.
  await until('the first socket closed', 5_000, () => first.closedAt, undefined, 50);
  t.equal(first.received.at(-1)?.type, 'leave', 'leave was the last message on the first socket');
  t.ok(first.closedAt! <= hello(second)!.at + 1000, 'the first socket was closed when the client rejoined');
  await page.evaluate(() => (window as any).oramaDemo.call.leave());
});
