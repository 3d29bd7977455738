// The ceiling for bench/api.ts: a bare fastify route on the same Node, same core.
import Fastify from 'fastify';
const app = Fastify({ logger: false });
app.get('/hello', async () => ({ hello: 'world' }));
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) });
process.stdout.write(`listening ${(app.server.address() as { port: number }).port}\n`);
