// The monitor's probe, run ON a node (`orama monitor report`, `orama inspector`): the controller
// sends this program and its request on stdin to the node's Node runtime (nothing is installed,
// nothing on argv), it probes from where the services are reachable — the SFU over WireGuard,
// TURN on its public address with a credential derived from the namespace's secret, the cluster
// database with the node's read-only `monitor` user — and prints one JSON object.
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import { Resolver } from 'node:dns/promises';
import { TurnClient } from '../webrtc/turn-client.ts';

export type ProbeCheck =
  /**
   * `socket`: over this Unix socket (a gateway); `connect` + `cert_file`: an https URL's name
   * checked at this address (the HTTPS front) — the server must present the certificate in
   * cert_file, valid for the URL's host name.
   */
  | { id: string; kind: 'http'; url: string; method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; socket?: string; connect?: string; cert_file?: string }
  | { id: string; kind: 'turn'; host: string; port: number; username: string; password: string }
  /** `hash`: every value comes back as its sha256 (a secret is compared, never sent). */
  | { id: string; kind: 'rqlite'; url: string; netrc: string; query: string; hash?: boolean }
  | { id: string; kind: 'relay_sockets'; min: number; max: number }
  /** A text file that holds no secret (cluster_state.json, ufw's user.rules): its content. */
  | { id: string; kind: 'read'; path: string }
  /** `key=value` in a config file (turnserver.conf): the sha256 of the value, never the value. */
  | { id: string; kind: 'config_hash'; path: string; key: string }
  | { id: string; kind: 'units'; pattern: string }
  /** An A query to one server (the node's own Knot). */
  | { id: string; kind: 'dns'; server: string; name: string };

export type ProbeResult =
  | { ok: boolean; status?: number; body?: unknown; error?: string }
  | { ok: boolean; binding: string; allocate: string }
  | { ok: boolean; rows?: unknown[][]; error?: string }
  | { ok: boolean; count?: number; error?: string }
  | { ok: boolean; text?: string; error?: string }
  | { ok: boolean; sha256?: string; error?: string }
  | { ok: boolean; units?: { unit: string; active: string }[]; error?: string }
  | { ok: boolean; addresses?: string[]; error?: string };

const sha256 = (v: unknown) => createHash('sha256').update(String(v)).digest('hex');

const TIMEOUT_MS = 3000;

async function http(c: Extract<ProbeCheck, { kind: 'http' }>): Promise<ProbeResult> {
  const url = new URL(c.url);
  const tls = url.protocol === 'https:';
  const expected = c.cert_file ? new X509Certificate(readFileSync(c.cert_file)).fingerprint256 : undefined;
  try {
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const opts = {
        method: c.method ?? 'GET', path: url.pathname + url.search, headers: { host: url.host, ...c.headers },
        timeout: TIMEOUT_MS,
        ...(c.socket ? { socketPath: c.socket } : { host: c.connect ?? url.hostname, port: url.port || (tls ? 443 : 80) }),
        ...(tls ? {
          servername: url.hostname,
          // Checked by hand below: the certificate the front was given, for this name (a test CA
          // is not in the node's trust store, and need not be).
          rejectUnauthorized: !expected,
        } : {}),
      };
      const req = (tls ? httpsRequest : httpRequest)(opts, (r: IncomingMessage) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => { if (text.length < 4096) text += d; });
        r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        r.on('error', reject);
      });
      if (expected) {
        req.on('socket', (s) => (s as TLSSocket).once('secureConnect', () => {
          const peer = (s as TLSSocket).getPeerCertificate();
          const wrongName = checkServerIdentity(url.hostname, peer);
          if (peer.fingerprint256 !== expected) req.destroy(new Error(`the server at ${c.connect} presents another certificate (${peer.subject?.CN ?? '?'}) than ${c.cert_file}`));
          else if (wrongName) req.destroy(new Error(`${c.cert_file} does not name ${url.hostname}`));
        }));
      }
      req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(c.body);
    });
    let body: unknown = res.text.slice(0, 500);
    try {
      body = JSON.parse(res.text);
    } catch {}
    return { ok: res.status === 200, status: res.status, body };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

async function turn(c: Extract<ProbeCheck, { kind: 'turn' }>): Promise<ProbeResult> {
  const client = await TurnClient.open({ host: c.host, port: c.port, transport: 'udp', username: c.username, password: c.password, timeoutMs: TIMEOUT_MS });
  try {
    const b = await client.binding();
    const a = await client.allocate({ lifetime: 60 });
    const say = (r: { ok: boolean; code?: number; reason?: string }) => (r.ok ? 'ok' : `${r.code ?? 0} ${r.reason ?? ''}`.trim());
    return { ok: b.ok && a.ok, binding: say(b), allocate: say(a) };
  } finally {
    await client.close(); // releases the allocation (Refresh lifetime 0)
  }
}

async function rqlite(c: Extract<ProbeCheck, { kind: 'rqlite' }>): Promise<ProbeResult> {
  try {
    const m = /login\s+(\S+)\s+password\s+(\S+)/.exec(readFileSync(c.netrc, 'utf8'));
    if (!m) return { ok: false, error: `${c.netrc}: no login/password` };
    const res = await fetch(`${c.url}/db/query?level=weak&q=${encodeURIComponent(c.query)}`, {
      headers: { authorization: `Basic ${Buffer.from(`${m[1]}:${m[2]}`).toString('base64')}` },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const j = (await res.json()) as { results?: { values?: unknown[][]; error?: string }[] };
    const r = j.results?.[0];
    if (res.status !== 200 || !r || r.error) return { ok: false, error: `HTTP ${res.status} ${r?.error ?? ''}`.trim() };
    return { ok: true, rows: (r.values ?? []).map((row) => (c.hash ? row.map(sha256) : row)) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/** UDP sockets bound in a relay range: coturn's relay allocations in use. */
function relaySockets(min: number, max: number): ProbeResult {
  try {
    const out = execFileSync('ss', ['-Huan'], { encoding: 'utf8' });
    // State Recv-Q Send-Q Local:Port Peer:Port
    const count = out.split('\n').filter((l) => {
      const local = l.trim().split(/\s+/)[3] ?? '';
      const port = Number(local.slice(local.lastIndexOf(':') + 1));
      return port >= min && port <= max;
    }).length;
    return { ok: true, count };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function read(path: string): ProbeResult {
  try {
    return { ok: true, text: readFileSync(path, 'utf8').slice(0, 256 * 1024) };
  } catch (e) {
    return { ok: false, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

function configHash(path: string, key: string): ProbeResult {
  try {
    const m = new RegExp(`^\\s*${key.replace(/[-]/g, '\\-')}\\s*=\\s*(.*?)\\s*$`, 'm').exec(readFileSync(path, 'utf8'));
    return m ? { ok: true, sha256: sha256(m[1]) } : { ok: false, error: `no ${key}= in ${path}` };
  } catch (e) {
    return { ok: false, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

async function dnsA(server: string, name: string): Promise<ProbeResult> {
  const r = new Resolver({ timeout: TIMEOUT_MS, tries: 1 });
  r.setServers([server]);
  try {
    return { ok: true, addresses: (await r.resolve4(name)).sort() };
  } catch (e) {
    return { ok: false, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

function units(pattern: string): ProbeResult {
  try {
    const out = execFileSync('systemctl', ['list-units', '--all', '--plain', '--no-legend', '--no-pager', pattern], { encoding: 'utf8' });
    return { ok: true, units: out.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)).map(([unit, , active]) => ({ unit, active })) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

export async function probe(checks: ProbeCheck[]): Promise<Record<string, ProbeResult>> {
  const out: Record<string, ProbeResult> = {};
  await Promise.all(
    checks.map(async (c) => {
      out[c.id] =
        c.kind === 'http' ? await http(c)
        : c.kind === 'turn' ? await turn(c)
        : c.kind === 'rqlite' ? await rqlite(c)
        : c.kind === 'relay_sockets' ? relaySockets(c.min, c.max)
        : c.kind === 'read' ? read(c.path)
        : c.kind === 'config_hash' ? configHash(c.path, c.key)
        : c.kind === 'dns' ? await dnsA(c.server, c.name)
        : units(c.pattern);
    }),
  );
  return out;
}

// Sent as `globalThis.__ORAMA_PROBE = [...checks]` ahead of this bundle on the node's stdin.
const request = (globalThis as { __ORAMA_PROBE?: ProbeCheck[] }).__ORAMA_PROBE;
if (request) {
  probe(request).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (e) => {
      process.stdout.write(JSON.stringify({ __error: String(e?.message ?? e) }) + '\n');
      process.exitCode = 1;
    },
  );
}
