// The ceiling for bench/api.ts: a bare fastify route on the same Node, same core, answering a
// body of the same shape as the credentials endpoint (no auth, no hooks, no headers of ours).
import Fastify from 'fastify';
const app = Fastify({ logger: false });
const body = { urls: ['turn:203.0.113.11:3478?transport=udp', 'turns:203.0.113.11:5349?transport=tcp'], username: '1700000600:bench', credential: 'VGhpcyBpcyBub3QgYSBzZWNyZXQ=', ttl: 600 };
app.get('/hello', async () => body);
app.post('/hello', async () => body);
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) });
process.stdout.write(`listening ${(app.server.address() as { port: number }).port}\n`);
process.once('SIGTERM', () => void app.close()); // a natural exit, so --cpu-prof writes its profile
