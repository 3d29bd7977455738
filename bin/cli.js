// Starts a CLI from its precompiled bundle (dist/cli/, made by `npm run build`, which `npm ci`
// runs) when the bundle is at least as new as every source file; otherwise from the TypeScript
// sources through tsx, so an edited checkout never runs stale code.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function bundleIsFresh(name) {
  try {
    return statSync(join(root, 'dist', 'cli', `${name}.js`)).mtimeMs >= Math.max(newestSource(join(root, 'src')), statSync(join(root, 'package-lock.json')).mtimeMs);
  } catch {
    return false;
  }
}

export async function run(name) {
  let mod;
  if (bundleIsFresh(name) && !process.env.ORAMA_FROM_SOURCE) mod = await import(join(root, 'dist', 'cli', `${name}.js`));
  else {
    const { register } = await import('tsx/esm/api');
    register();
    mod = await import(join(root, 'src', 'cli', `${name}.ts`));
  }
  process.exitCode = await mod.main(process.argv.slice(2));
}
