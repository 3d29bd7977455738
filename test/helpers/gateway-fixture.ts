// A gateway of namespace "ns-a" on a temp SQLite store, configured through a real gateway.json
// and key files, with two namespaces' worth of credentials (ns-a and ns-b) to prove isolation.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import { buildGateway } from '../../src/gateway/app.ts';
import { resolveGatewayConfig, type GatewayConfigFile, type SfuNode } from '../../src/gateway/config.ts';
import { generateJwtKey, mintToken, verificationKeyText } from '../../src/webrtc/tokens.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { Secret } from '../../src/secret/secret.ts';
import type { JwtAlg, JwtKey, Store } from '../../src/store/store.ts';

export interface Fixture {
  app: FastifyInstance;
  store: Store;
  dir: string;
  internalKey: string;
  turnSecret: string;
  keys: Record<string, JwtKey>;
  token(ns: string, subject: string, opts?: { owner?: boolean; ttl?: number; now?: number }): Promise<string>;
  apiKey(ns: string, subject: string, owner?: boolean): Promise<string>;
  logs: string[];
}

export async function gatewayFixture(t: Test, opts: {
  sfuNodes?: SfuNode[];
  alg?: JwtAlg;
  rateLimit?: GatewayConfigFile['rate_limit'];
  logLevel?: GatewayConfigFile['log_level'];
  turnTtl?: number;
  healthCacheMs?: number;
  tokenCache?: number;
  /** One log line per request (gateway.json access_log). */
  accessLog?: boolean;
  /** Shared with stand-in SFUs started before the gateway. */
  internalKey?: string;
} = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'orama-gw-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openSqliteStore(join(dir, 'state.db'));
  const turnSecret = randomBytes(32).toString('base64url');
  await store.putWebrtcConfig({ namespace: 'ns-a', enabled: true, turnSecret: new Secret(turnSecret), sfuNodeCount: 3, turnNodeCount: 2, turnTtl: 600 });
  await store.putWebrtcConfig({ namespace: 'ns-b', enabled: true, turnSecret: new Secret(randomBytes(32).toString('base64url')), sfuNodeCount: 3, turnNodeCount: 2, turnTtl: 600 });
  const keys: Record<string, JwtKey> = {};
  for (const ns of ['ns-a', 'ns-b']) keys[ns] = await store.putJwtKeyIfAbsent(generateJwtKey(ns, opts.alg ?? 'HS256'));
  const internalKey = opts.internalKey ?? randomBytes(24).toString('base64url');
  writeFileSync(join(dir, 'jwt.key'), verificationKeyText(keys['ns-a']), { mode: 0o600 });
  writeFileSync(join(dir, 'internal.key'), internalKey, { mode: 0o600 });
  const file: GatewayConfigFile = {
    namespace: 'ns-a',
    listen: { host: '127.0.0.1', port: 0 },
    store: { driver: 'sqlite', path: join(dir, 'state.db') },
    jwt: { alg: keys['ns-a'].alg, key_file: join(dir, 'jwt.key') },
    turn: { urls: ['turn:203.0.113.11:3478?transport=udp', 'turns:203.0.113.11:5349?transport=tcp'], ...(opts.turnTtl ? { ttl: opts.turnTtl } : {}) },
    sfu_nodes: opts.sfuNodes ?? [{ node: 'node-1', ip: '127.0.0.1', signal_port: 9 }],
    internal_key_file: join(dir, 'internal.key'),
    ...(opts.rateLimit ? { rate_limit: opts.rateLimit } : {}),
    log_level: opts.logLevel ?? 'warn',
    ...(opts.accessLog ? { access_log: true } : {}),
  };
  const { config } = await resolveGatewayConfig(file);
  if (opts.healthCacheMs !== undefined) config.healthCacheMs = opts.healthCacheMs;
  const logs: string[] = [];
  const app = await buildGateway(config, { store, logStream: { write: (l: string) => { logs.push(l); } }, tokenCache: opts.tokenCache });
  t.teardown(async () => { await app.close(); await store.close(); });
  return {
    app, store, dir, internalKey, turnSecret, keys, logs,
    token: (ns, subject, o = {}) => mintToken(keys[ns], { subject, owner: o.owner ?? false, ttl: o.ttl ?? 600, now: o.now }),
    apiKey: async (ns, subject, owner = false) => (await store.createApiKey({ namespace: ns, subject, owner })).key.reveal(),
  };
}
