// The client's offer in the SFU's header-extension id space (`joined.header_extensions`). An SFU
// whose media worker writes its own ids on forwarded packets (mediasoup) shares the client's
// BUNDLE, where an id means one extension on every m-line: offered under Chrome's own ids, the
// SFU has to leave out the extensions whose ids collide (transport-cc among them — no bandwidth
// feedback for the publisher). So the client rewrites its offer before applying it: every
// extension the SFU lists under the SFU's id, the others left out (the SFU would not take them).
// Browsers apply such an offer as their own (Chromium 156 does; the client falls back to the
// offer as made if one refuses it).

const EXTMAP = /^a=extmap:(\d+)(\/[a-z]+)? (\S+)(.*)$/;

/** `sdp` with its a=extmap lines in the SFU's ids; lines of extensions the SFU does not list dropped. */
export function alignExtensions(sdp: string, ids: Readonly<Record<string, number>>): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const out: string[] = [];
  for (const line of sdp.split(eol)) {
    const m = EXTMAP.exec(line);
    if (!m) {
      out.push(line);
      continue;
    }
    const [, , direction = '', uri, rest] = m;
    if (!Object.hasOwn(ids, uri)) continue;
    out.push(`a=extmap:${ids[uri]}${direction} ${uri}${rest}`);
  }
  return out.join(eol);
}
