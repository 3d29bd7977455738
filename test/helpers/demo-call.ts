// Used by bin/demo: the main job's verdict — two headless Chromiums, in a network namespace that
// reaches only the nodes' public addresses, open https://ns-NS.BASE/ as a person would (the name
// from the cluster's DNS for one, pinned to node3 for the other; the cluster's CA trusted through
// an NSS database, no certificate flags), join one room and call each other relay-only; each must
// decode the other's video. One line says so.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { ensureClusterUp } from '../../src/cluster/cluster.ts';
import { clientNetns } from './cluster-suite.ts';
import { launchInNetns, waitEvent, waitMedia } from './browser.ts';
import { frontCa } from './front.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ns = process.argv[2] ?? 'demo';
const orama = (...a: string[]) => execFileSync('node', [join(root, 'bin', 'orama.js'), ...a], { encoding: 'utf8' });
const status = JSON.parse(orama('namespace', 'webrtc-status', '--namespace', ns, '--json'));
const token = orama('token', 'mint', '--namespace', ns, '--subject', 'demo-call', '--owner').trim(); // an owner may open the room

const cluster = await ensureClusterUp();
const net = clientNetns(cluster, 'odemo', 64);
const profile = mkdtempSync(join(tmpdir(), 'odemo-'));
let ok = false;
try {
  const ca = frontCa(cluster.inventory);
  const host = new URL(status.url).hostname;
  const browsers = [await launchInNetns(join(profile, 'a'), net.netns, { ca }), await launchInNetns(join(profile, 'b'), net.netns, { ca, resolve: { [host]: status.nodes[2].public_ip } })];
  try {
    const results: string[] = [];
    const pages = [];
    for (const [name, browser] of [['ada', browsers[0]], ['bob', browsers[1]]] as const) {
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${status.url}/v1/webrtc/client/demo.html#${new URLSearchParams({ room: 'demo-call', token, name, autojoin: '1' })}`);
      await waitEvent(page, 'joined', 0, 30000);
      pages.push([name, page] as const);
    }
    for (const [name, page] of pages) {
      const s = await waitMedia(page, 1, 30000);
      const frames = Math.max(0, ...s.videos.map((v) => v.framesDecoded));
      const relayed = s.pairs.length > 0 && s.pairs.every((p) => p.startsWith('relay/'));
      results.push(`${name} decoded ${frames} frames${relayed ? ' (relayed through TURN)' : ' (NOT relayed)'}`);
      if (frames === 0 || !relayed) throw new Error(results.join('; '));
    }
    ok = true;
    console.log(`CALL OK: two browsers called each other through ${status.url}: ${results.join('; ')}.`);
  } finally {
    for (const b of browsers) await b.close();
  }
} catch (e) {
  console.log(`CALL FAILED: ${(e as Error).message}`);
} finally {
  rmSync(profile, { recursive: true, force: true });
  net.remove();
}
process.exitCode = ok ? 0 : 1;
