// The webrtc gateway's role, reduced to what SFU tests need (the real gateway is src/gateway):
//   POST /v1/webrtc/turn/credentials   -> TURN REST credentials (any Bearer token is accepted here)
//   WS   /v1/webrtc/signal?room=R      -> proxied to the first SFU whose /health is 200, with the
//                                         x-orama-internal-key / -namespace / -subject headers
// Runs inside the turn namespace, which has both the public and the internal address.
// argv[2]: JSON {port, upstreams: ["ip:port"...], namespace, key_file, secret_file, turn_urls}
import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { issueTurnCredentials } from '../../src/webrtc/credentials.ts';

const opts = JSON.parse(process.argv[2]) as {
  port: number;
  upstreams: string[];
  namespace: string;
  key_file: string;
  secret_file: string;
  turn_urls: string[];
  ttl?: number;
};
const key = readFileSync(opts.key_file, 'utf8').trim();
const secret = readFileSync(opts.secret_file, 'utf8').trim();
const cors = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, content-type',
  'access-control-allow-methods': 'POST, GET, OPTIONS',
};

function healthy(upstream: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`http://${upstream}/health`, { timeout: 500 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function pickUpstream(): Promise<string | undefined> {
  for (const upstream of opts.upstreams) if (await healthy(upstream)) return upstream;
  return undefined;
}

const http = createServer((req, res) => {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, cors);
    return res.end();
  }
  if (req.method === 'POST' && req.url === '/v1/webrtc/turn/credentials') {
    if (!/^Bearer \S+/.test(req.headers.authorization ?? '')) {
      res.writeHead(401, cors);
      return res.end();
    }
    const body = JSON.stringify(issueTurnCredentials({ secret, namespace: opts.namespace, subject: 'standin-user', urls: opts.turn_urls, ttl: opts.ttl }));
    res.writeHead(200, { ...cors, 'content-type': 'application/json' });
    return res.end(body);
  }
  res.writeHead(404, cors);
  res.end();
});

const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('Bearer') ? 'Bearer' : false) });
http.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://gw');
  if (url.pathname !== '/v1/webrtc/signal') return socket.destroy();
  const room = url.searchParams.get('room') ?? '';
  wss.handleUpgrade(req, socket, head, async (client) => {
    const pending: string[] = [];
    const onEarly = (data: Buffer) => pending.push(data.toString());
    client.on('message', onEarly);
    const upstream = await pickUpstream();
    if (!upstream) return client.close(1013, 'no SFU available');
    const sfu = new WebSocket(`ws://${upstream}/signal?room=${encodeURIComponent(room)}`, {
      headers: { 'x-orama-internal-key': key, 'x-orama-namespace': opts.namespace, 'x-orama-subject': 'test-user' },
    });
    sfu.on('open', () => {
      client.off('message', onEarly);
      for (const m of pending) sfu.send(m);
      client.on('message', (data) => sfu.readyState === sfu.OPEN && sfu.send(data.toString()));
    });
    sfu.on('message', (data) => client.readyState === client.OPEN && client.send(data.toString()));
    const closeBoth = (code?: number, reason?: Buffer) => {
      const c = code && code >= 3000 ? code : 1000;
      if (client.readyState === client.OPEN) client.close(c, reason?.toString());
      if (sfu.readyState === sfu.OPEN || sfu.readyState === sfu.CONNECTING) sfu.terminate();
    };
    sfu.on('close', closeBoth);
    sfu.on('error', () => closeBoth(1011));
    client.on('close', () => sfu.terminate());
    process.stdout.write(JSON.stringify({ event: 'proxy', room, upstream }) + '\n');
  });
});

http.listen(opts.port, '0.0.0.0', () => process.stdout.write(JSON.stringify({ event: 'listening', port: opts.port }) + '\n'));
process.on('SIGTERM', () => process.exit(0));
