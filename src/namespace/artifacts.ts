// The node-side programs (SFU, gateway, seed) as single-file ESM bundles built with esbuild on
// the controller and shipped by the roles together with the runtime role's Node binary.
// Cached by a hash of the sources and the lockfile, so a no-op apply rebuilds nothing.
import { build, type Plugin } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const ARTIFACTS = {
  sfu: 'src/sfu/main.ts',
  gateway: 'src/gateway/main.ts',
  seed: 'src/namespace/seed-main.ts',
} as const;
export type ArtifactName = keyof typeof ARTIFACTS;

// The nodes use the rqlite driver only; SQLite's native addon has no place in a node bundle.
const noSqlite: Plugin = {
  name: 'no-better-sqlite3',
  setup(b) {
    b.onResolve({ filter: /^better-sqlite3$/ }, () => ({ path: 'better-sqlite3', namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
      contents: 'export default function Database() { throw new Error("the SQLite driver is not part of the node-side bundle; use the rqlite store"); }',
    }));
  },
};

function sourceHash(): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|json)$/.test(f)) h.update(p).update(readFileSync(p));
    }
  };
  walk(join(root, 'src'));
  h.update(readFileSync(join(root, 'package-lock.json')));
  return h.digest('hex').slice(0, 16);
}

export async function buildArtifacts(cacheDir = process.env.ORAMA_CACHE_DIR ?? '/var/cache/orama-provision'): Promise<Record<ArtifactName, string>> {
  const dir = join(cacheDir, 'artifacts', sourceHash());
  mkdirSync(dir, { recursive: true });
  const out = {} as Record<ArtifactName, string>;
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
        plugins: [noSqlite],
        banner: { js: "import { createRequire as __orama_cr } from 'node:module'; const require = __orama_cr(import.meta.url);" },
        define: { 'process.env.ORAMA_BUNDLED': '"1"' },
      });
    }
    out[name] = file;
  }
  return out;
}
