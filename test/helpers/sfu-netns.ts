// A relay-only WebRTC topology for SFU tests, built from network namespaces:
//
//   client netns (10.91.K.2) ── veth ── turn netns (public 10.91.K.1 | internal 10.92.K.1, ip_forward 0)
//                                       turn netns ── veth ── sfu netns (10.92.K.2 [+ .3 for a rogue peer])
//
// The client netns routes only 10.91.K.0/24: the SFU address is unreachable from it ("Network is
// unreachable"); media can only flow through coturn. Everything created here is named
// osfu-<pid>-* and removed by destroy(); processes are stopped by the PIDs we started.
import type { EngineName } from '../../src/sfu/engine.ts';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { Secret } from '../../src/secret/secret.ts';
import { generateJwtKey, mintToken, verificationKeyText, type JwtKey } from '../../src/webrtc/tokens.ts';
import { clientAssets } from '../../src/client/assets.ts';
import { ensureFrontTls } from '../../src/secret/ca.ts';
import { renderText } from '../../src/provision/template.ts';
import { gatewaySocket } from '../../src/webrtc/names.ts';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const TURNSERVER = '/usr/bin/turnserver';
export const CHROMIUM = '/usr/lib/chromium/chromium';
export const CADDY = '/usr/bin/caddy';
export const TSX_NODE = [process.execPath, '--import', 'tsx'];

export function requireTool(path: string, pkg: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: install the Debian package "${pkg}" (listed in .ci/apt-packages)`);
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface Topology {
  tag: string;
  ns: { client: string; turn: string; sfu: string };
  addr: { client: string; turnPublic: string; turnInternal: string; sfu: string; rogue: string };
  dir: string;
  turnSecret: string;
  internalKey: string;
  namespace: string;
  secretFile: string;
  keyFile: string;
  turnUrls: string[];
}

let counter = 0;

export class NetnsLab {
  readonly topo: Topology;
  private readonly procs: { name: string; proc: ChildProcess; log: string }[] = [];
  /** Directories under /run made for a gateway socket (removed by destroy). */
  private readonly runtimeDirs: string[] = [];
  private readonly created: string[] = [];

  constructor() {
    // Subnet index from pid + counter keeps parallel test files apart.
    const k = ((process.pid % 200) + 20 + counter++) % 250;
    const tag = `osfu-${process.pid}-${counter}`;
    const dir = mkdtempSync(join(tmpdir(), `${tag}-`));
    const turnSecret = randomBytes(24).toString('hex');
    const internalKey = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'turn_secret'), turnSecret, { mode: 0o600 });
    writeFileSync(join(dir, 'internal_key'), internalKey, { mode: 0o600 });
    this.topo = {
      tag,
      ns: { client: `${tag}-client`, turn: `${tag}-turn`, sfu: `${tag}-sfu` },
      addr: { client: `10.91.${k}.2`, turnPublic: `10.91.${k}.1`, turnInternal: `10.92.${k}.1`, sfu: `10.92.${k}.2`, rogue: `10.92.${k}.3` },
      dir,
      turnSecret,
      internalKey,
      namespace: 'osfutest',
      secretFile: join(dir, 'turn_secret'),
      keyFile: join(dir, 'internal_key'),
      turnUrls: [`turn:10.91.${k}.1:3478?transport=udp`],
    };
  }

  /** Creates the namespaces and links. */
  up(): this {
    const { ns, addr } = this.topo;
    const short = `${process.pid % 100000}${counter}`;
    const vethCT = [`oc${short}a`, `oc${short}b`];
    const vethTS = [`os${short}a`, `os${short}b`];
    for (const name of Object.values(ns)) {
      ip('netns', 'add', name);
      this.created.push(name);
      ip('-n', name, 'link', 'set', 'lo', 'up');
    }
    ip('link', 'add', vethCT[0], 'netns', ns.client, 'type', 'veth', 'peer', 'name', vethCT[1], 'netns', ns.turn);
    ip('link', 'add', vethTS[0], 'netns', ns.turn, 'type', 'veth', 'peer', 'name', vethTS[1], 'netns', ns.sfu);
    ip('-n', ns.client, 'addr', 'add', `${addr.client}/24`, 'dev', vethCT[0]);
    ip('-n', ns.turn, 'addr', 'add', `${addr.turnPublic}/24`, 'dev', vethCT[1]);
    ip('-n', ns.turn, 'addr', 'add', `${addr.turnInternal}/24`, 'dev', vethTS[0]);
    ip('-n', ns.sfu, 'addr', 'add', `${addr.sfu}/24`, 'dev', vethTS[1]);
    ip('-n', ns.sfu, 'addr', 'add', `${addr.rogue}/24`, 'dev', vethTS[1]);
    for (const [n, dev] of [[ns.client, vethCT[0]], [ns.turn, vethCT[1]], [ns.turn, vethTS[0]], [ns.sfu, vethTS[1]]]) {
      ip('-n', n, 'link', 'set', dev, 'up');
    }
    execFileSync('ip', ['netns', 'exec', ns.turn, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    return this;
  }

  /**
   * One more client namespace with a link of its own to the turn namespace (10.93.K.2 ↔
   * 10.93.K.1, routed to the public subnet through it): what a browser there receives can be
   * shaped alone (tc on `turnDev`, the turn side of its link, shapes what is sent to it).
   */
  addClient(): { ns: string; addr: string; turnDev: string } {
    const { ns, addr } = this.topo;
    const k = addr.client.split('.')[2];
    const name = `${this.topo.tag}-client2`;
    const short = `${process.pid % 100000}${counter}`;
    const [inside, turnDev] = [`od${short}a`, `od${short}b`];
    ip('netns', 'add', name);
    this.created.push(name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('link', 'add', inside, 'netns', name, 'type', 'veth', 'peer', 'name', turnDev, 'netns', ns.turn);
    ip('-n', name, 'addr', 'add', `10.93.${k}.2/24`, 'dev', inside);
    ip('-n', ns.turn, 'addr', 'add', `10.93.${k}.1/24`, 'dev', turnDev);
    ip('-n', name, 'link', 'set', inside, 'up');
    ip('-n', ns.turn, 'link', 'set', turnDev, 'up');
    ip('-n', name, 'route', 'add', `10.91.${k}.0/24`, 'via', `10.93.${k}.1`);
    return { ns: name, addr: `10.93.${k}.2`, turnDev };
  }

  /** Spawns a process inside a namespace; its output goes to a log file in the lab dir. */
  spawnIn(nsName: string, name: string, argv: string[], opts: { stdio?: 'pipe' | 'log'; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const log = join(this.topo.dir, `${name}.log`);
    const out = opts.stdio === 'pipe' ? 'pipe' : openSync(log, 'a');
    const err = opts.stdio === 'pipe' ? openSync(log, 'a') : out;
    const proc = spawn('ip', ['netns', 'exec', nsName, ...argv], {
      cwd: REPO,
      stdio: ['pipe', out, err],
      env: { ...process.env, ...opts.env },
    });
    this.procs.push({ name, proc, log });
    return proc;
  }

  logOf(name: string): string {
    const p = this.procs.find((x) => x.name === name);
    return p && existsSync(p.log) ? readFileSync(p.log, 'utf8') : '';
  }

  /** coturn in the turn namespace: public listener, internal relay, private peers denied but the SFU. */
  startCoturn(extraAllowed: string[] = []): ChildProcess {
    requireTool(TURNSERVER, 'coturn');
    const { addr, dir, turnSecret } = this.topo;
    const conf = join(dir, 'turnserver.conf');
    writeFileSync(
      conf,
      [
        `listening-ip=${addr.turnPublic}`,
        'listening-port=3478',
        `relay-ip=${addr.turnInternal}`,
        'min-port=49160',
        'max-port=49959',
        'use-auth-secret',
        `static-auth-secret=${turnSecret}`,
        'realm=orama.test',
        'fingerprint',
        'no-tls',
        'no-dtls',
        'no-cli',
        'no-multicast-peers',
        'denied-peer-ip=0.0.0.0-0.255.255.255',
        'denied-peer-ip=10.0.0.0-10.255.255.255',
        'denied-peer-ip=100.64.0.0-100.127.255.255',
        'denied-peer-ip=127.0.0.0-127.255.255.255',
        'denied-peer-ip=169.254.0.0-169.254.255.255',
        'denied-peer-ip=172.16.0.0-172.31.255.255',
        'denied-peer-ip=192.168.0.0-192.168.255.255',
        ...[addr.sfu, ...extraAllowed].map((a) => `allowed-peer-ip=${a}`),
        `pidfile=${join(dir, 'turnserver.pid')}`,
        'log-file=stdout',
        'simple-log',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    return this.spawnIn(this.topo.ns.turn, 'coturn', [TURNSERVER, '-c', conf]);
  }

  /** Writes an SFU config file and starts the SFU (src/sfu/main.ts) inside the SFU namespace. */
  /** `cpu`: pin the SFU (and the workers it starts) to that core (taskset), for benchmarks. `config`: more keys. */
  startSfu(name: string, opts: { signalPort: number; mediaPorts: [number, number]; ttl?: number; drainDeadlineS?: number; engine?: EngineName; workers?: number; cpu?: number; config?: Record<string, unknown> }): { proc: ChildProcess; config: string; url: string } {
    const { addr, namespace } = this.topo;
    const config = join(this.topo.dir, `${name}.json`);
    writeFileSync(
      config,
      JSON.stringify(
        {
          namespace,
          listen_ip: addr.sfu,
          signal_port: opts.signalPort,
          media_port_min: opts.mediaPorts[0],
          media_port_max: opts.mediaPorts[1],
          turn_urls: this.topo.turnUrls,
          turn_relay_ips: [addr.turnInternal],
          turn_secret_file: this.topo.secretFile,
          internal_key_file: this.topo.keyFile,
          credential_ttl: opts.ttl ?? 600,
          drain_deadline_s: opts.drainDeadlineS ?? 5,
          ...(opts.engine ? { engine: opts.engine } : {}),
          ...(opts.workers !== undefined ? { mediasoup_workers: opts.workers } : {}),
          ...opts.config,
        },
        null,
        2,
      ),
    );
    const pin = opts.cpu === undefined ? [] : ['taskset', '-c', String(opts.cpu)];
    const proc = this.spawnIn(this.topo.ns.sfu, name, [...pin, ...TSX_NODE, 'src/sfu/main.ts', '--config', config]);
    return { proc, config, url: `http://${addr.sfu}:${opts.signalPort}` };
  }

  /** The real gateway's store, JWT key and client files for this lab (made on first use). */
  private gatewayState?: Promise<{ store: string; jwtKeyFile: string; clientDir: string; key: JwtKey }>;

  private prepareGateway() {
    this.gatewayState ??= (async () => {
      const { topo } = this;
      const storePath = join(topo.dir, 'state.db');
      const store = await openSqliteStore(storePath);
      await store.putWebrtcConfig({ namespace: topo.namespace, enabled: true, turnSecret: new Secret(topo.turnSecret), sfuNodeCount: 3, turnNodeCount: 1, turnTtl: 600 });
      const key = await store.putJwtKeyIfAbsent(generateJwtKey(topo.namespace, 'HS256'));
      await store.close();
      const jwtKeyFile = join(topo.dir, 'jwt_key');
      writeFileSync(jwtKeyFile, verificationKeyText(key) + '\n', { mode: 0o600 });
      const clientDir = join(topo.dir, 'client');
      mkdirSync(clientDir);
      for (const [name, asset] of await clientAssets()) writeFileSync(join(clientDir, name), asset.body);
      return { store: storePath, jwtKeyFile, clientDir, key };
    })();
    return this.gatewayState;
  }

  /** A JWT of the lab's namespace for `subject`, signed with the key the lab's gateways verify. */
  async token(subject: string, owner = false): Promise<string> {
    return mintToken((await this.prepareGateway()).key, { subject, owner, ttl: 3600 });
  }

  /**
   * The real gateway (src/gateway/main.ts, as deployed: JWT auth, credentials, room affinity in the
   * store, signaling proxy, the browser client) in the turn namespace, on every address there (the
   * public one for clients; the internal one, reachable from the SFU namespace, for the rogue-peer
   * test). Its store is a SQLite file shared by the lab's gateways; `upstreams` are its SFU nodes.
   */
  async startGateway(port: number, upstreams: string[], opts: { socket?: boolean } = {}): Promise<{ proc: ChildProcess; url: string; internalUrl: string }> {
    const { topo } = this;
    const state = await this.prepareGateway();
    const config = join(topo.dir, `gateway-${port}.json`);
    // With `socket`, as on the nodes: the gateway listens on its socket only, behind startFront().
    const socket = gatewaySocket(topo.namespace);
    if (opts.socket) {
      mkdirSync(dirname(socket), { recursive: true, mode: 0o755 });
      this.runtimeDirs.push(dirname(socket));
    }
    writeFileSync(config, JSON.stringify({
      namespace: topo.namespace,
      listen: opts.socket ? { socket } : { host: '0.0.0.0', port },
      ...(opts.socket ? { trust_proxy: true } : {}),
      store: { driver: 'sqlite', path: state.store },
      jwt: { alg: 'HS256', key_file: state.jwtKeyFile },
      turn: { urls: topo.turnUrls, ttl: 600 },
      sfu_nodes: upstreams.map((u) => ({ node: `sfu-${u.split(':')[1]}`, ip: u.split(':')[0], signal_port: Number(u.split(':')[1]) })),
      internal_key_file: topo.keyFile,
      client_dir: state.clientDir,
      log_level: 'info',
    }, null, 2));
    const proc = this.spawnIn(topo.ns.turn, `gateway-${port}`, [...TSX_NODE, 'src/gateway/main.ts', '--config', config]);
    return { proc, url: `http://${topo.addr.turnPublic}:${port}`, internalUrl: `http://${topo.addr.turnInternal}:${port}` };
  }

  /**
   * The cluster's HTTPS front in the turn namespace, on its public address: Debian's caddy with
   * roles/front's own Caddyfile (rendered here with the lab's paths), a certificate for
   * *.orama.test from a CA of the lab's own (src/secret/ca.ts). It proxies
   * https://ns-<lab namespace>.orama.test/ to the gateway started with `socket: true`.
   */
  startFront(): { proc: ChildProcess; url: string; host: string; ca: string } {
    const { topo } = this;
    requireTool(CADDY, 'caddy');
    const tls = ensureFrontTls(join(topo.dir, 'tls'), 'orama.test');
    const file = join(topo.dir, 'Caddyfile');
    writeFileSync(file, renderText(readFileSync(join(REPO, 'roles/front/templates/Caddyfile.j2'), 'utf8'), {
      public_ip: topo.addr.turnPublic, front_state_dir: 'unused', front_cert_file: tls.cert, front_key_file: tls.key, front_storage: join(topo.dir, 'caddy-data'),
    }));
    const env = { XDG_CONFIG_HOME: join(topo.dir, 'caddy-config'), XDG_DATA_HOME: join(topo.dir, 'caddy-data'), HOME: topo.dir };
    const proc = this.spawnIn(topo.ns.turn, 'front', [CADDY, 'run', '--config', file, '--adapter', 'caddyfile'], { env });
    const host = `ns-${topo.namespace}.orama.test`;
    return { proc, url: `https://${host}`, host, ca: readFileSync(tls.ca, 'utf8') };
  }

  /**
   * What browsers reach, as on the nodes: the gateway on its socket only (upstreams: `sfus`),
   * behind the HTTPS front (roles/front's Caddyfile, Debian's caddy); resolves once the SFUs
   * answer /health and the gateway and front are up.
   */
  async startWebFront(sfus: { url: string }[]): Promise<ReturnType<NetnsLab['startFront']>> {
    await this.startGateway(8080, sfus.map((s) => new URL(s.url).host), { socket: true });
    const front = this.startFront();
    await Promise.all(sfus.map((s) => this.waitHttp(this.topo.ns.turn, `${s.url}/health`, 30000)));
    await this.waitLog('gateway-8080', /listening/);
    await this.waitLog('front', /serving initial configuration/);
    return front;
  }

  /** The SFU node (as the gateway names it, "sfu-<port>") that holds `room` in the lab's store. */
  async roomNode(room: string): Promise<string | undefined> {
    const store = await openSqliteStore((await this.prepareGateway()).store);
    try {
      return (await store.getRoom(this.topo.namespace, room))?.sfuNode;
    } finally {
      await store.close();
    }
  }

  /** curl from inside a namespace (the test process itself lives in none of them); `ms`: the request's time as curl measures it. */
  curl(nsName: string, url: string, extra: string[] = []): { status: number; body: string; ms: number } {
    try {
      const out = execFileSync('ip', ['netns', 'exec', nsName, 'curl', '-s', '-m', '3', '-w', '\n%{http_code} %{time_total}', ...extra, url], { encoding: 'utf8' });
      const i = out.lastIndexOf('\n');
      const [status, seconds] = out.slice(i + 1).split(' ').map(Number);
      return { status, body: out.slice(0, i), ms: seconds * 1000 };
    } catch (error) {
      const e = error as { stdout?: string; status?: number };
      return { status: 0, body: `curl exit ${e.status}: ${e.stdout ?? ''}`, ms: NaN };
    }
  }

  async waitHttp(nsName: string, url: string, timeoutMs = 15000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.curl(nsName, url).status === 200) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${url} not up in ${nsName} after ${timeoutMs} ms`);
  }

  async waitLog(name: string, pattern: RegExp, timeoutMs = 10000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (pattern.test(this.logOf(name))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${name}: no ${pattern} in log after ${timeoutMs} ms:\n${this.logOf(name).slice(-2000)}`);
  }

  metric(nsName: string, sfuUrl: string, name: string): number {
    const body = this.curl(nsName, `${sfuUrl}/metrics`).body;
    let sum = 0;
    for (const line of body.split('\n')) if (line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
    return sum;
  }

  /** Stops what we started (by PID), deletes the namespaces (their veths go with them) and the temp dir. */
  async destroy(): Promise<void> {
    for (const { proc } of this.procs.reverse()) {
      if (proc.exitCode === null && proc.signalCode === null && proc.pid) {
        try {
          process.kill(proc.pid, 'SIGKILL');
        } catch {}
      }
    }
    await new Promise((r) => setTimeout(r, 100));
    for (const name of this.created.reverse()) {
      try {
        ip('netns', 'del', name);
      } catch {}
    }
    for (const d of this.runtimeDirs) rmSync(d, { recursive: true, force: true });
    // ORAMA_LAB_LOGS=DIR keeps the processes' logs of a run (debugging a failure).
    const keep = process.env.ORAMA_LAB_LOGS;
    if (keep) {
      mkdirSync(keep, { recursive: true });
      for (const f of readdirSync(this.topo.dir)) if (f.endsWith('.log')) copyFileSync(join(this.topo.dir, f), join(keep, f));
    }
    rmSync(this.topo.dir, { recursive: true, force: true });
  }
}
