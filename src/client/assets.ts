// The browser client and demo page as servable assets. The gateway mounts them (e.g. under
// /v1/webrtc/client/); demo.html imports ./orama-webrtc.js relative to itself.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface ClientAsset {
  contentType: string;
  body: Buffer;
}

// From the repository's root, not from this file: the CLI also runs bundled (dist/cli/, two levels down too).
const here = (name: string) => join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'client', name);
let cached: Promise<Map<string, ClientAsset>> | undefined;

async function bundle(): Promise<Map<string, ClientAsset>> {
  const result = await build({
    entryPoints: [here('./orama-webrtc.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    write: false,
    minify: false,
    sourcemap: false,
    legalComments: 'none',
  });
  const js = result.outputFiles[0].contents;
  return new Map([
    ['orama-webrtc.js', { contentType: 'text/javascript; charset=utf-8', body: Buffer.from(js) }],
    ['demo.html', { contentType: 'text/html; charset=utf-8', body: await readFile(here('./demo.html')) }],
  ]);
}

/** file name -> asset; built once per process. */
export function clientAssets(): Promise<Map<string, ClientAsset>> {
  cached ??= bundle();
  return cached;
}
