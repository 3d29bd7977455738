// Headless Debian Chromium driving the demo page (src/client/demo.html): launch inside a network
// namespace (playwright talks over a pipe, which ip-netns-exec keeps), join a room, read WebRTC
// stats. Shared by the browser end-to-end suites.
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_BIN = '/usr/lib/chromium/chromium';

export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--autoplay-policy=no-user-gesture-required', '--disable-renderer-backgrounding',
  '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows',
];

/**
 * Trusts `caPem` the way a person does on Linux: a fresh HOME whose NSS database (Chromium ≥ 146
 * reads ~/.local/share/pki/nssdb; certutil from libnss3-tools) holds the CA as a trusted issuer.
 * Returns the HOME to launch Chromium with.
 */
export function trustingHome(dir: string, caPem: string): string {
  const home = join(dir, 'home');
  const db = join(home, '.local', 'share', 'pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  writeFileSync(join(dir, 'ca.pem'), caPem);
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-t', 'C,,', '-n', 'orama test cluster CA', '-i', join(dir, 'ca.pem')]);
  return home;
}

/**
 * Chromium inside netns `ns`, trusting the cluster's CA (no certificate or secure-origin flag:
 * the demo page is a real https origin). Names resolve through the netns' resolv.conf (the
 * cluster's DNS, clientNetns `nameserver`), unless `resolve` pins a host to one node's address
 * (`--host-resolver-rules`, as a hosts-file line would) to pick which gateway a browser uses.
 */
export async function launchInNetns(dir: string, ns: string, opts: { ca?: string; resolve?: Record<string, string>; args?: string[] }): Promise<Browser> {
  mkdirSync(dir, { recursive: true });
  const wrapper = join(dir, `chromium-in-${ns}`);
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM_BIN} "$@"\n`);
  chmodSync(wrapper, 0o755);
  // Without `ca` (a page served over plain http, as bench:sfu's), a fresh HOME trusting nothing extra.
  const home = opts.ca === undefined ? join(dir, 'home') : trustingHome(dir, opts.ca);
  mkdirSync(home, { recursive: true });
  const rules = Object.entries(opts.resolve ?? {}).map(([host, ip]) => `MAP ${host} ${ip}`).join(', ');
  return chromium.launch({
    executablePath: wrapper,
    args: [...CHROMIUM_ARGS, ...(rules ? [`--host-resolver-rules=${rules}`] : []), '--disable-features=LocalNetworkAccessChecks', ...(opts.args ?? [])],
    env: { ...process.env, HOME: home },
    timeout: 30000,
  });
}

export type DemoEvent = { type: string; t: number; detail: Record<string, unknown> };

/**
 * A person joining a call: a new page (its own context) in `browser` opens the demo served at
 * `origin` with `params` after `#` (room, token, name, …: the fragment is never sent, so the token
 * reaches no request line or log) and autojoin; resolves once the demo says `joined`. `log`, if
 * given, hears the page's errors and failed requests (and its console with `console: true`).
 */
export async function joinDemo(browser: Browser, origin: string, params: Record<string, string>, opts: { log?: (line: string) => void; console?: boolean; timeoutMs?: number } = {}): Promise<{ page: Page; joined: DemoEvent }> {
  const page = await (await browser.newContext()).newPage();
  const name = params.name ?? 'page';
  const { log } = opts;
  if (log) {
    page.on('pageerror', (e) => log(`${name} page error: ${e.message}`));
    page.on('requestfailed', (r) => log(`${name} request failed: ${r.url()} ${r.failure()?.errorText}`));
    if (opts.console) page.on('console', (m) => log(`${name} console: ${m.text()}`));
  }
  await page.goto(`${origin}/v1/webrtc/client/demo.html#${new URLSearchParams({ autojoin: '1', ...params })}`);
  return { page, joined: await waitEvent(page, 'joined', 0, opts.timeoutMs ?? 20000) };
}

export async function waitEvent(page: Page, type: string, after = 0, timeoutMs = 15000): Promise<DemoEvent> {
  const handle = await page.waitForFunction(
    ([type, after]) => (window as any).oramaDemo?.events.find((e: DemoEvent) => e.type === type && e.t > (after as number)),
    [type, after] as const,
    { timeout: timeoutMs, polling: 100 },
  );
  return (await handle.jsonValue()) as DemoEvent;
}

export interface MediaStats {
  /** Per received video: frames decoded, and the size of the last one (a simulcast layer's). */
  videos: { framesDecoded: number; frameWidth: number; frameHeight: number }[];
  audios: { packetsReceived: number; totalAudioEnergy: number }[];
  pairs: string[];
  /** The SRTP suite each transport negotiated through DTLS (RTCTransportStats.srtpCipher). */
  srtpCiphers: string[];
}

export function mediaStats(page: Page): Promise<MediaStats> {
  return page.evaluate(async () => {
    const pc: RTCPeerConnection = (window as any).oramaDemo.call.pc;
    const report = await pc.getStats();
    const all = [...report.values()] as any[];
    const byId = new Map(all.map((s) => [s.id, s]));
    const pairs = all
      .filter((s) => s.type === 'transport' && s.selectedCandidatePairId)
      .map((s) => byId.get(s.selectedCandidatePairId))
      .map((p) => `${byId.get(p.localCandidateId)?.candidateType}/${byId.get(p.remoteCandidateId)?.candidateType}`);
    return {
      videos: all.filter((s) => s.type === 'inbound-rtp' && s.kind === 'video').map((s) => ({ framesDecoded: s.framesDecoded ?? 0, frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0 })),
      audios: all.filter((s) => s.type === 'inbound-rtp' && s.kind === 'audio').map((s) => ({ packetsReceived: s.packetsReceived ?? 0, totalAudioEnergy: s.totalAudioEnergy ?? 0 })),
      pairs,
      srtpCiphers: all.filter((s) => s.type === 'transport' && s.srtpCipher).map((s) => s.srtpCipher),
    };
  });
}

export async function waitMedia(page: Page, remotes: number, timeoutMs = 20000): Promise<MediaStats> {
  const until = Date.now() + timeoutMs;
  let s: MediaStats | undefined;
  while (Date.now() < until) {
    s = await mediaStats(page);
    const videosOk = s.videos.filter((v) => v.framesDecoded > 0).length >= remotes;
    const audiosOk = s.audios.filter((a) => a.packetsReceived > 0 && a.totalAudioEnergy > 0).length >= remotes;
    if (videosOk && audiosOk) return s;
    await new Promise((r) => setTimeout(r, 400));
  }
  throw new Error(`media from ${remotes} peers not decoded within ${timeoutMs} ms: ${JSON.stringify(s)}`);
}

/**
 * A YUV4MPEG2 file (4:2:0) for Chromium's --use-file-for-fake-video-capture, which loops it: a
 * pattern that moves each frame, so the encoder has detail and motion at every size.
 */
export function writeY4m(path: string, width: number, height: number, frames: number, fps = 30): void {
  const chroma = (width / 2) * (height / 2);
  const frame = Buffer.alloc(width * height + 2 * chroma);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, `YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`);
    for (let i = 0; i < frames; i++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          frame[y * width + x] = ((x + 8 * i) ^ (y + 3 * i)) & 0xff;
        }
      }
      frame.fill(128 + ((i * 4) % 64), width * height, width * height + chroma);
      frame.fill(128 - ((i * 2) % 64), width * height + chroma);
      writeSync(fd, 'FRAME\n');
      writeSync(fd, frame);
    }
  } finally {
    closeSync(fd);
  }
}

export async function sendChat(from: Page, text: string): Promise<void> {
  await from.evaluate((text) => {
    const demo = (window as any).oramaDemo;
    return demo.call.sendData(JSON.stringify({ from: demo.name, text }));
  }, text);
}

export async function waitChat(page: Page, text: string): Promise<void> {
  await page.waitForFunction((text) => (window as any).oramaDemo.chat.some((m: { text: string }) => m.text === text), text, { timeout: 10000 });
}
