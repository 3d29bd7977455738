// The node-side bundles (src/namespace/artifacts.ts) start where the roles put them: away from the
// repository and its node_modules, as ES modules. CommonJS packages inside them find `require`,
// `__dirname` and `__filename` (mediasoup computes its default worker path from __dirname when it
// loads: without them the SFU died at start, whatever its engine). Each is started with a config
// that does not exist: the error must be about that file, not a ReferenceError.
import t from 'tap';
import { execFile } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildArtifacts } from '../../src/namespace/artifacts.ts';
import { tempDir } from '../helpers/tmp.ts';

const cache = tempDir(t, 'bundles-cache-');
const away = tempDir(t, 'bundles-away-');
const artifacts = await buildArtifacts(cache);

const start = (file: string) => new Promise<string>((resolve) => {
  execFile(process.execPath, [file, '--config', join(away, 'nonexistent.json')], { cwd: away, timeout: 20_000, env: { PATH: process.env.PATH } }, (_err, stdout, stderr) => resolve(stdout + stderr));
});

for (const name of ['sfu', 'gateway'] as const) {
  t.test(`orama-${name}.mjs loads away from node_modules`, async (t) => {
    const file = join(away, `orama-${name}.mjs`);
    copyFileSync(artifacts[name], file);
    const out = await start(file);
    t.notMatch(out, /ReferenceError|is not defined in ES module scope|Cannot find (module|package)/, out);
    t.match(out, /nonexistent\.json|ENOENT/, 'it got as far as reading its config');
  });
}
