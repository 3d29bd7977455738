// The SFU's config file (/etc/orama/webrtc/<NS>/sfu.json, rendered by the sfu role). Secrets are
// never in it: only paths to files holding them, read once at start.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { DEFAULT_TURN_TTL_SECONDS } from '../webrtc/credentials.ts';
import { RESUME_GRACE_S } from '../webrtc/protocol.ts';
import { NAMESPACE_PATTERN } from '../webrtc/names.ts';
import { Secret } from '../secret/secret.ts';
import { ENGINE_NAMES, type EngineName } from './engine.ts';

export { Secret };

export interface SfuConfigFile {
  namespace: string;
  listen_ip: string;
  signal_port: number;
  media_port_min: number;
  media_port_max: number;
  turn_urls: string[];
  /** The ONLY remote ICE addresses accepted: the relay addresses of the namespace's coturn nodes. */
  turn_relay_ips: string[];
  turn_secret_file: string;
  internal_key_file: string;
  credential_ttl?: number;
  drain_deadline_s?: number;
  /** How long a peer whose signaling socket closed waits for a resume (default RESUME_GRACE_S). */
  resume_grace_s?: number;
  max_peers_per_room?: number;
  publisher_bitrate?: number;
  /** The media engine (default mediasoup: bench:sfu's lower CPU per forwarded stream, docs/benchmarks.md). */
  engine?: EngineName;
  /** mediasoup: its worker binary (shipped by roles/sfu) and how many workers (default: one per core). */
  mediasoup_worker_bin?: string;
  mediasoup_workers?: number;
  /** mediasoup: consumers on a worker before a room's next peers go to another worker (default 500). */
  mediasoup_consumers_per_worker?: number;
}

export interface SfuConfig {
  namespace: string;
  listenIp: string;
  signalPort: number;
  mediaPorts: [number, number];
  turnUrls: string[];
  turnRelayIps: string[];
  turnSecret: Secret;
  internalKey: Secret;
  credentialTtl: number;
  drainDeadlineS: number;
  resumeGraceS: number;
  maxPeersPerRoom: number;
  publisherBitrate: number;
  engine: EngineName;
  mediasoupWorkerBin?: string;
  /** 0: one per core. */
  mediasoupWorkers: number;
  mediasoupConsumersPerWorker: number;
}

/** mediasoup's own figure: about 500 consumers per worker (one core). */
export const MEDIASOUP_CONSUMERS_PER_WORKER = 500;

/**
 * The engine with the lower CPU per forwarded stream at equal load in bench:sfu (mediasoup:
 * 2–2.7× less than werift, docs/benchmarks.md "SFU engines"). One rule: the CLIs and vars read it here.
 */
export const DEFAULT_ENGINE: EngineName = 'mediasoup';

const ipv4 = { type: 'string', pattern: '^(\\d{1,3}\\.){3}\\d{1,3}$' };
const port = { type: 'integer', minimum: 0, maximum: 65535 };
export const sfuConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['namespace', 'listen_ip', 'signal_port', 'media_port_min', 'media_port_max', 'turn_urls', 'turn_relay_ips', 'turn_secret_file', 'internal_key_file'],
  properties: {
    namespace: { type: 'string', pattern: NAMESPACE_PATTERN },
    listen_ip: ipv4,
    signal_port: port,
    media_port_min: port,
    media_port_max: port,
    turn_urls: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^turns?:' } },
    turn_relay_ips: { type: 'array', minItems: 1, items: ipv4 },
    turn_secret_file: { type: 'string', minLength: 1 },
    internal_key_file: { type: 'string', minLength: 1 },
    credential_ttl: { type: 'integer', minimum: 2, maximum: 86400 },
    drain_deadline_s: { type: 'number', minimum: 0, maximum: 3600 },
    resume_grace_s: { type: 'number', minimum: 0, maximum: 300 },
    max_peers_per_room: { type: 'integer', minimum: 1, maximum: 1000 },
    publisher_bitrate: { type: 'integer', minimum: 100000, maximum: 20000000 },
    engine: { enum: [...ENGINE_NAMES] },
    mediasoup_worker_bin: { type: 'string', pattern: '^/' },
    mediasoup_workers: { type: 'integer', minimum: 0, maximum: 64 },
    mediasoup_consumers_per_worker: { type: 'integer', minimum: 1, maximum: 100000 },
  },
};

const validate = new Ajv({ strict: true }).compile(sfuConfigSchema);

function readSecret(path: string, what: string): Secret {
  const value = readFileSync(path, 'utf8').trim();
  if (!value) throw new Error(`${what} file ${path} is empty`);
  return new Secret(value);
}

/** The file's shape and ranges, no secrets read: the SFU at start, and the controller before a plan. */
export function checkSfuConfigFile(file: unknown): SfuConfigFile {
  if (!validate(file)) {
    const e = validate.errors?.[0];
    throw new Error(`invalid SFU config: ${e?.instancePath || '/'} ${e?.message}`);
  }
  const f = file as unknown as SfuConfigFile;
  if (f.media_port_min >= f.media_port_max) throw new Error('invalid SFU config: media_port_min must be below media_port_max');
  return f;
}

export function resolveSfuConfig(input: SfuConfigFile): SfuConfig {
  const file = checkSfuConfigFile(input);
  return {
    namespace: file.namespace,
    listenIp: file.listen_ip,
    signalPort: file.signal_port,
    mediaPorts: [file.media_port_min, file.media_port_max],
    turnUrls: file.turn_urls,
    turnRelayIps: file.turn_relay_ips,
    turnSecret: readSecret(file.turn_secret_file, 'turn_secret'),
    internalKey: readSecret(file.internal_key_file, 'internal_key'),
    credentialTtl: file.credential_ttl ?? DEFAULT_TURN_TTL_SECONDS,
    drainDeadlineS: file.drain_deadline_s ?? 30,
    resumeGraceS: file.resume_grace_s ?? RESUME_GRACE_S,
    maxPeersPerRoom: file.max_peers_per_room ?? 200,
    publisherBitrate: file.publisher_bitrate ?? 1_500_000,
    engine: file.engine ?? DEFAULT_ENGINE,
    mediasoupWorkerBin: file.mediasoup_worker_bin,
    mediasoupWorkers: file.mediasoup_workers ?? 0,
    mediasoupConsumersPerWorker: file.mediasoup_consumers_per_worker ?? MEDIASOUP_CONSUMERS_PER_WORKER,
  };
}

export function loadSfuConfig(path: string): SfuConfig {
  return resolveSfuConfig(JSON.parse(readFileSync(path, 'utf8')) as SfuConfigFile);
}
