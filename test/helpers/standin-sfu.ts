// A STAND-IN for the SFU, for the gateway's edge-case tests and bench:api (the real SFU is used
// by gateway-sfu.test.ts and the cluster e2e). It is a real HTTP + ws server speaking exactly
// the SFU's side of the gateway contract, and can be told to misbehave: GET /health (200
// serving / 503 draining, {status, peers}), GET /rooms ({rooms:[{room, peers}]}, internal key),
// DELETE /rooms/<room> (internal key), and WS /signal?room=R requiring x-orama-internal-key; it
// echoes frames back wrapped as {type:'echo', room, namespace, subject, data} so tests can see
// what arrived and with which headers.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface StandinSfu {
  node: string;
  ip: string;
  port: number;
  status: 'serving' | 'draining';
  /** Every DELETE /rooms/<room> it accepted. */
  closed: string[];
  /** Headers of every accepted /signal upgrade. */
  upgrades: { room: string | null; headers: IncomingMessage['headers'] }[];
  sockets: Set<WebSocket>;
  peers: Map<string, number>;
  stop(): Promise<void>;
}

export async function startStandinSfu(node: string, internalKey: string, opts: { port?: number } = {}): Promise<StandinSfu> {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  const sfu: StandinSfu = {
    node, ip: '127.0.0.1', port: 0, status: 'serving', closed: [], upgrades: [], sockets: new Set(), peers: new Map(),
    stop: async () => {
      for (const ws of sfu.sockets) ws.terminate();
      wss.close();
      const done = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await done;
    },
  };
  const keyOk = (req: IncomingMessage) => req.headers['x-orama-internal-key'] === internalKey;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sfu');
    const json = (status: number, body: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
    if (req.method === 'GET' && url.pathname === '/health') {
      let peers = 0;
      for (const n of sfu.peers.values()) peers += n;
      return json(sfu.status === 'serving' ? 200 : 503, { status: sfu.status, peers });
    }
    if (req.method === 'GET' && url.pathname === '/rooms') {
      if (!keyOk(req)) return json(401, { error: 'unauthorized' });
      return json(200, { rooms: [...sfu.peers].map(([room, peers]) => ({ room, peers })) });
    }
    const m = /^\/rooms\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'DELETE' && m) {
      if (!keyOk(req)) return json(401, { error: 'unauthorized' });
      const room = decodeURIComponent(m[1]);
      sfu.closed.push(room);
      for (const ws of sfu.sockets) if ((ws as WebSocket & { room?: string }).room === room) { ws.send(JSON.stringify({ type: 'room-closed', room })); ws.close(1000, 'room closed'); }
      const had = sfu.peers.delete(room);
      return json(had ? 200 : 404, had ? { closed: room } : { error: 'no such room' });
    }
    json(404, { error: 'not found' });
  });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://sfu');
    if (url.pathname !== '/signal' || !keyOk(req)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const room = url.searchParams.get('room');
    sfu.upgrades.push({ room, headers: req.headers });
    wss.handleUpgrade(req, socket, head, (ws) => {
      (ws as WebSocket & { room?: string }).room = room ?? undefined;
      sfu.sockets.add(ws);
      if (room) sfu.peers.set(room, (sfu.peers.get(room) ?? 0) + 1);
      ws.on('message', (data, binary) => {
        if (binary) return ws.send(data, { binary: true });
        const text = data.toString();
        if (text === 'close-me') return ws.close(4001, 'closed by sfu');
        ws.send(JSON.stringify({ type: 'echo', room, namespace: req.headers['x-orama-namespace'], subject: req.headers['x-orama-subject'], data: text }));
      });
      ws.on('close', () => {
        sfu.sockets.delete(ws);
        if (room && sfu.peers.has(room)) sfu.peers.set(room, Math.max(0, sfu.peers.get(room)! - 1));
      });
    });
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', () => r()));
  sfu.port = (server.address() as AddressInfo).port;
  return sfu;
}
