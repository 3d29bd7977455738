// GET /v1/webrtc/client/<file>: the browser client module and the demo page. Public files (the
// page asks for a token itself). On nodes they come from `client_dir` (shipped by the gateway
// role, built on the controller); from a source checkout they are bundled on first use.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../context.ts';

interface Asset {
  contentType: string;
  body: Buffer;
  /** Pages get a CSP that allows exactly their own inline script and style (by hash). */
  csp?: string;
}

function pageCsp(html: string): string {
  const hashes = (tag: string) =>
    [...html.matchAll(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => `'sha256-${createHash('sha256').update(m[1]).digest('base64')}'`).join(' ');
  return [
    "default-src 'none'",
    `script-src 'self' ${hashes('script')}`,
    `style-src ${hashes('style') || "'none'"}`,
    "connect-src 'self'",
    "media-src 'self' blob: mediastream:",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
  ].join('; ');
}

function withCsp(assets: Map<string, Asset>): Map<string, Asset> {
  for (const [name, a] of assets) if (name.endsWith('.html')) a.csp = pageCsp(a.body.toString('utf8'));
  return assets;
}

const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', html: 'text/html; charset=utf-8' };

function fromDir(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const f of readdirSync(dir)) {
    const ext = f.split('.').pop()!;
    if (TYPES[ext]) out.set(f, { contentType: TYPES[ext], body: readFileSync(join(dir, f)) });
  }
  return out;
}

export async function clientRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  let assets: Promise<Map<string, Asset>> | undefined;
  const load = () =>
    (assets ??= (ctx.config.clientDir
      ? Promise.resolve(fromDir(ctx.config.clientDir))
      : import('../../client/assets.ts').then((m) => m.clientAssets()).then((x) => new Map([...x].map(([k, v]) => [k, { ...v }] as const)))
    ).then(withCsp));
  app.get<{ Params: { file: string } }>('/v1/webrtc/client/:file', {
    schema: { params: { type: 'object', required: ['file'], properties: { file: { type: 'string', pattern: '^[a-z0-9-]+\\.(js|html)$' } } } },
  }, async (req, reply) => {
    const a = (await load()).get(req.params.file);
    if (!a) return reply.code(404).send({ error: 'not_found', message: `no client file "${req.params.file}"` });
    if (a.csp) reply.header('content-security-policy', a.csp);
    return reply.type(a.contentType).header('cache-control', 'no-cache').send(a.body);
  });
}
