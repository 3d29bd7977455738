#!/usr/bin/env node
// `npm run build` (and `npm ci`, through `prepare`): the CLIs as ES module bundles in dist/cli/,
// so a run starts without compiling TypeScript. Packages stay external (node_modules); commands
// loaded on demand (cluster, namespace) are their own chunks and cost nothing when unused.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
rmSync(join(root, 'dist', 'cli'), { recursive: true, force: true });
await build({
  entryPoints: ['orama-provision', 'orama'].map((n) => join(root, 'src', 'cli', `${n}.ts`)),
  outdir: join(root, 'dist', 'cli'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
