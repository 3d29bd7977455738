// The node-side programs (SFU, gateway, seed) as single-file ESM bundles built with esbuild on
// the controller and shipped by the roles together with the runtime role's Node binary.
// Cached by a hash of the sources and the lockfile, so a no-op apply rebuilds nothing.
// `enable` also ships mediasoup's worker, a C++ binary built by setup (mediasoupWorker below).
import { build, type Plugin } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { clientAssets } from '../client/assets.ts';
import { ProvisionError } from '../provision/errors.ts';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const ARTIFACTS = {
  sfu: 'src/sfu/main.ts',
  gateway: 'src/gateway/main.ts',
  seed: 'src/namespace/seed-main.ts',
  /** Not installed: `orama monitor` sends it to a node's Node runtime on stdin (probe-main.ts). */
  probe: 'src/namespace/probe-main.ts',
} as const;
export type ArtifactName = keyof typeof ARTIFACTS;

// Controller-only packages stay out of node bundles: the nodes use the rqlite driver (no SQLite
// addon) and get the browser client prebuilt (no esbuild at run time).
const controllerOnly: Plugin = {
  name: 'controller-only',
  setup(b) {
    b.onResolve({ filter: /^(better-sqlite3|esbuild)$/ }, (a) => ({ path: a.path, namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, (a) => ({
      contents: `const no = () => { throw new Error("${a.path} is not part of the node-side bundle"); }; export default no; export const build = no;`,
    }));
  },
};

function sourceHash(): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|json|html)$/.test(f)) h.update(p).update(readFileSync(p));
    }
  };
  walk(join(root, 'src'));
  h.update(readFileSync(join(root, 'package-lock.json')));
  return h.digest('hex').slice(0, 16);
}

export type Artifacts = Record<ArtifactName, string> & { client: string[] };

export async function buildArtifacts(cacheDir = process.env.ORAMA_CACHE_DIR ?? '/var/cache/orama-provision'): Promise<Artifacts> {
  const dir = join(cacheDir, 'artifacts', sourceHash());
  mkdirSync(join(dir, 'client'), { recursive: true });
  const out = { client: [] as string[] } as Artifacts;
  for (const [file, asset] of await clientAssets()) {
    const p = join(dir, 'client', file);
    if (!existsSync(p)) writeFileSync(p, asset.body);
    out.client.push(p);
  }
  for (const [name, entry] of Object.entries(ARTIFACTS) as [ArtifactName, string][]) {
    const file = join(dir, `orama-${name}.mjs`);
    if (!existsSync(file)) {
      await build({
        entryPoints: [join(root, entry)],
        outfile: file,
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'esm',
        logLevel: 'error',
        plugins: [controllerOnly],
        // CommonJS packages inside an ES module bundle: `require`, and `__dirname`/`__filename`
        // under names of their own (mediasoup's index computes its default workerBin from
        // __dirname at load: without them the SFU, whatever its engine, dies at start).
        banner: { js: "import { createRequire as __orama_cr } from 'node:module'; import { fileURLToPath as __orama_fu } from 'node:url'; import { dirname as __orama_dn } from 'node:path'; const require = __orama_cr(import.meta.url); const __orama_filename = __orama_fu(import.meta.url); const __orama_dirname = __orama_dn(__orama_filename);" },
        define: { 'process.env.ORAMA_BUNDLED': '"1"', __dirname: '__orama_dirname', __filename: '__orama_filename' },
      });
    }
    out[name] = file;
  }
  return out;
}

/** What `enable` ships: the bundles and mediasoup's worker. */
export type EnableArtifacts = Artifacts & { mediasoup_worker: string };

/**
 * mediasoup's worker binary on the controller: where the mediasoup package looks for it (its
 * `workerBin`: node_modules/mediasoup/worker/out/Release/mediasoup-worker, or
 * $MEDIASOUP_WORKER_BIN), put there by `.ci/setup` (`.ci/setup.d/mediasoup.sh`, which builds it
 * with `.ci/mediasoup/build-worker.sh`; the package's own postinstall never runs). roles/sfu
 * ships it with every enable, whatever the namespace's engine, so an engine switch is a change
 * of sfu.json alone.
 */
export async function mediasoupWorker(): Promise<string> {
  const { workerBin } = await import('mediasoup');
  let ok = false;
  try { ok = statSync(workerBin).isFile(); } catch { /* missing: said below */ }
  if (!ok) {
    throw new ProvisionError(`mediasoup worker not built: ${workerBin} does not exist; run .ci/setup (its step .ci/setup.d/mediasoup.sh builds the worker with .ci/mediasoup/build-worker.sh, about 6 min on 2 cores, cached, and puts it there)`);
  }
  return workerBin;
}

export async function enableArtifacts(cacheDir?: string): Promise<EnableArtifacts> {
  const worker = await mediasoupWorker(); // before the bundles: the cheaper failure first
  return { ...(await buildArtifacts(cacheDir)), mediasoup_worker: worker };
}
