// orama-namespace-webrtc-gateway@NS: `node --import tsx src/gateway/main.ts --config gateway.json`.
// Secrets come from the files the config names, never from argv. SIGTERM/SIGINT close the
// listener and every signaling socket, then the store.
import { parseArgs } from 'node:util';
import { openStore } from '../store/open.ts';
import { buildGateway } from './app.ts';
import { loadGatewayConfigFile } from './config.ts';

/**
 * Checks the store now and every `everyMs` while it is down: one warning when it goes, one line
 * when it is back (never one per failed request).
 */
export function watchStore(store: { ping(): Promise<void> }, log: (msg: string) => void, everyMs = 5000): { stop(): void } {
  let down = false;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = async () => {
    try {
      await store.ping();
      if (down) log('cluster database reachable again');
      down = false;
    } catch (e) {
      if (!down) log(`WARNING: cluster database unreachable (${(e as Error).message}); answering 503 and retrying every ${everyMs / 1000} s`);
      down = true;
    }
    if (!stopped) timer = setTimeout(check, down ? everyMs : everyMs * 6).unref();
  };
  void check();
  return { stop: () => ((stopped = true), timer && clearTimeout(timer)) };
}

export async function main(argv: string[]): Promise<number> {
  let configPath: string | undefined;
  try {
    ({ values: { config: configPath } } = parseArgs({ args: argv, options: { config: { type: 'string' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`orama-webrtc-gateway: ${(e as Error).message}\nusage: gateway --config /path/gateway.json\n`);
    return 2;
  }
  if (!configPath) {
    process.stderr.write('orama-webrtc-gateway: --config /path/gateway.json is required\n');
    return 2;
  }
  let app;
  try {
    const { config, store: storeConfig } = await loadGatewayConfigFile(configPath);
    // The cluster database is migrated by orama-seed; the gateway never waits for it to start: a
    // node booted while the database has no quorum serves 503 (health, credentials) and retries.
    const store = await openStore(storeConfig, { migrate: storeConfig.driver === 'sqlite' });
    app = await buildGateway(config, { store, tokenCache: process.env.ORAMA_GATEWAY_TOKEN_CACHE === '0' ? 0 : undefined });
    const watch = watchStore(store, (m) => process.stderr.write(`orama-webrtc-gateway: ${m}\n`));
    app.addHook('onClose', async () => { watch.stop(); await store.close(); });
    if ('socket' in config.listen) {
      // The HTTPS front (another system user) connects: the socket is as open as the front is
      // public; its directory is the unit's RuntimeDirectory, so a stopped gateway leaves none behind.
      await app.listen({ path: config.listen.socket, writableAll: true, readableAll: true });
      process.stdout.write(`orama-webrtc-gateway: namespace ${config.namespace} listening on ${config.listen.socket}\n`);
    } else {
      await app.listen({ host: config.listen.host, port: config.listen.port });
      const addr = app.server.address() as { address: string; port: number };
      process.stdout.write(`orama-webrtc-gateway: namespace ${config.namespace} listening on ${addr.address}:${addr.port}\n`);
    }
  } catch (e) {
    process.stderr.write(`orama-webrtc-gateway: ${(e as Error).message}\n`);
    await app?.close().catch(() => undefined);
    return 1;
  }
  const running = app;
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      running.log.info({ signal: sig }, 'shutting down');
      void running.close().then(() => resolve(), () => resolve());
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
