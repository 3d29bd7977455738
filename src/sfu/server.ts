// HTTP + WebSocket front of the SFU, bound to the node's internal address only:
//   WS  /signal?room=R      signaling (header x-orama-internal-key required; the gateway proxies)
//   GET /health             200 serving, 503 draining
//   GET /metrics            Prometheus text
//   GET /rooms              rooms and their peer counts (x-orama-internal-key required)
//   DELETE /rooms/<room>    close a room (x-orama-internal-key required)
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ROOM_NAME_PATTERN, type ServerMessage } from '../webrtc/protocol.ts';
import { resolveSfuConfig, type SfuConfig, type SfuConfigFile } from './config.ts';
import type { EngineOptions, MediaEngine } from './engine.ts';
import { MediasoupEngine } from './engine-mediasoup.ts';
import { WeriftEngine } from './engine-werift.ts';
import type { SignalingTransport } from './peer.ts';
import { Session } from './session.ts';
import { Sfu } from './sfu.ts';
import { SFU_HEADERS, SFU_PATHS } from '../webrtc/sfu-api.ts';

/** ws closes the socket above this; frames between MAX_MESSAGE_BYTES and this get an error. */
const WS_MAX_PAYLOAD = 1024 * 1024;
const roomPattern = new RegExp(ROOM_NAME_PATTERN);

export interface RunningSfu {
  sfu: Sfu;
  address: { host: string; port: number };
  drain(deadlineS?: number): Promise<void>;
  close(): Promise<void>;
  /** The media engine failed (a mediasoup worker died): /health answers 503 from then on. */
  onEngineFailure: (reason: string) => void;
}

function keyMatches(header: string | string[] | undefined, key: string): boolean {
  if (typeof header !== 'string') return false;
  const a = Buffer.from(header);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

function wsTransport(ws: WebSocket): SignalingTransport {
  return {
    send(message: ServerMessage) {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    },
    close(code, reason) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    },
  };
}

function reply(res: ServerResponse, status: number, body: string, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Starts an SFU from a resolved config, or from the config file's shape (secrets read from files). */
export async function startSfu(input: SfuConfig | SfuConfigFile): Promise<RunningSfu> {
  const config = 'listen_ip' in input ? resolveSfuConfig(input) : input;
  const options: EngineOptions = {
    listenIp: config.listenIp,
    portRange: config.mediaPorts,
    isAllowedRemote: (ip) => sfu.policy.isAllowed(ip),
    onDroppedIceCheck: () => void sfu.metrics.droppedCandidates.ice_check++,
    publisherBitrate: config.publisherBitrate,
  };
  let running: RunningSfu | undefined;
  let log: Sfu['log'] = () => {};
  const engine: MediaEngine =
    config.engine === 'mediasoup'
      ? await MediasoupEngine.start(options, {
          workerBin: config.mediasoupWorkerBin,
          workers: config.mediasoupWorkers,
          consumersPerWorker: config.mediasoupConsumersPerWorker,
          onFailure: (reason) => running?.onEngineFailure(reason),
          onEvent: (event, fields) => log(event, fields),
        })
      : new WeriftEngine(options);
  const sfu: Sfu = new Sfu(config, engine);
  log = (event, fields) => sfu.log(event, fields);
  const key = config.internalKey.reveal();
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD });

  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://sfu');
    if (req.method === 'GET' && url.pathname === SFU_PATHS.health) {
      const failure = engine.failure();
      const status = failure ? 'failed' : sfu.draining ? 'draining' : 'serving';
      return reply(res, status === 'serving' ? 200 : 503, JSON.stringify({ status, namespace: config.namespace, engine: engine.name, peers: sfu.peerCount(), ...(failure ? { reason: failure } : {}) }));
    }
    if (req.method === 'GET' && url.pathname === SFU_PATHS.metrics) {
      void sfu.metricsText().then(
        (text) => reply(res, 200, text, 'text/plain; version=0.0.4'),
        (error: Error) => reply(res, 500, JSON.stringify({ error: error.message })),
      );
      return;
    }
    if (req.method === 'GET' && url.pathname === SFU_PATHS.rooms) {
      // Peer counts for the gateway's room list; internal like DELETE.
      if (!keyMatches(req.headers[SFU_HEADERS.internalKey], key)) return reply(res, 401, '{"error":"unauthorized"}');
      return reply(res, 200, JSON.stringify({ rooms: [...sfu.rooms.values()].map((r) => ({ room: r.name, peers: r.size })) }));
    }
    const roomPath = url.pathname.startsWith(`${SFU_PATHS.rooms}/`) ? /^\/[^/]+\/([^/]+)$/.exec(url.pathname) : null;
    if (req.method === 'DELETE' && roomPath) {
      if (!keyMatches(req.headers[SFU_HEADERS.internalKey], key)) return reply(res, 401, '{"error":"unauthorized"}');
      const room = decodeURIComponent(roomPath[1]);
      void sfu.closeRoom(room).then((found) => (found ? reply(res, 200, JSON.stringify({ closed: room })) : reply(res, 404, '{"error":"no such room"}')));
      return;
    }
    reply(res, 404, '{"error":"not found"}');
  });

  http.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://sfu');
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    if (url.pathname !== SFU_PATHS.signal) return refuse(404, 'Not Found');
    if (!keyMatches(req.headers[SFU_HEADERS.internalKey], key)) return refuse(401, 'Unauthorized');
    const ns = req.headers[SFU_HEADERS.namespace];
    if (ns !== undefined && ns !== config.namespace) return refuse(403, 'Forbidden');
    const room = url.searchParams.get('room') ?? undefined;
    if (room !== undefined && !roomPattern.test(room)) return refuse(400, 'Bad Request');
    const subjectHeader = req.headers[SFU_HEADERS.subject];
    const subject = typeof subjectHeader === 'string' ? subjectHeader.slice(0, 256) : undefined;
    wss.handleUpgrade(req, socket, head, (ws) => {
      const session = new Session(sfu, wsTransport(ws), room, subject);
      ws.on('message', (data, isBinary) => {
        void session.receive(isBinary ? Buffer.from(data as Buffer) : data.toString());
      });
      ws.on('close', (code) => session.lost(`signaling closed (${code})`));
      ws.on('error', () => ws.terminate());
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.signalPort, config.listenIp, () => resolve());
  });
  const bound = http.address() as AddressInfo;

  let closed = false;
  running = {
    onEngineFailure: () => {},
    sfu,
    address: { host: bound.address, port: bound.port },
    drain: (deadlineS?: number) => sfu.drain(deadlineS),
    async close() {
      if (closed) return;
      closed = true;
      await sfu.close();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections?.();
      await engine.close();
    },
  };
  return running;
}
