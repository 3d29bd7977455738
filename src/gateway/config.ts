// gateway.json: validated against a JSON schema, secrets read from the files it names (never
// from argv or the JSON itself). Errors name the field or the file, never a secret's value.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import type { StoreConfig } from '../store/open.ts';
import { Secret } from '../secret/secret.ts';
import type { JwtAlg } from '../store/store.ts';
import { NAMESPACE_PATTERN } from '../webrtc/names.ts';
import { loadVerificationKey, type VerificationKey } from '../webrtc/tokens.ts';

export interface SfuNode {
  node: string;
  ip: string;
  signal_port: number;
}

/** The file as written by the namespace orchestrator (and docs/gateway.md). */
export interface GatewayConfigFile {
  namespace: string;
  /** TCP (tests, a gateway without a front) or a Unix socket (the nodes: the HTTPS front proxies to it). */
  listen: Listen;
  store: StoreConfig;
  jwt: { alg: JwtAlg; key_file: string };
  turn: { urls: string[]; ttl?: number };
  sfu_nodes: SfuNode[];
  internal_key_file: string;
  rate_limit?: { credentials_per_minute?: number; room_creates_per_minute?: number };
  log_level?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Trust X-Forwarded-For from the namespace's HTTPS front (for logged client addresses). */
  trust_proxy?: boolean | string;
  /** One info line per answered request (default off: the namespace's HTTPS front logs access). */
  access_log?: boolean;
  /** Directory with orama-webrtc.js and demo.html (built on the controller, shipped by the role). */
  client_dir?: string;
}

/** What buildGateway needs: the file's settings with its secrets loaded. */
export type Listen = { host: string; port: number } | { socket: string };

export interface GatewayConfig {
  namespace: string;
  listen: Listen;
  jwt: VerificationKey;
  turn: { urls: string[]; ttl?: number };
  sfuNodes: SfuNode[];
  internalKey: Secret;
  rateLimit: { credentialsPerMinute: number; roomCreatesPerMinute: number };
  logLevel: NonNullable<GatewayConfigFile['log_level']>;
  trustProxy: boolean | string;
  accessLog: boolean;
  /** How long the namespace's TURN config read from the store is reused (ms). */
  storeCacheMs: number;
  /** How long an SFU health answer is reused (ms). */
  healthCacheMs: number;
  /** Directory with the built browser client and demo page (nodes); unset = bundle from source. */
  clientDir?: string;
}


export const configFileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['namespace', 'listen', 'store', 'jwt', 'turn', 'sfu_nodes', 'internal_key_file'],
  properties: {
    namespace: { type: 'string', pattern: NAMESPACE_PATTERN },
    listen: {
      oneOf: [
        {
          type: 'object', additionalProperties: false, required: ['host', 'port'],
          properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 0, maximum: 65535 } },
        },
        { type: 'object', additionalProperties: false, required: ['socket'], properties: { socket: { type: 'string', pattern: '^/' } } },
      ],
    },
    store: {
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['driver', 'path'], properties: { driver: { const: 'sqlite' }, path: { type: 'string', minLength: 1 } } },
        {
          type: 'object', additionalProperties: false, required: ['driver', 'urls'],
          properties: {
            driver: { const: 'rqlite' },
            urls: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^https?://' } },
            username: { type: 'string' }, password_file: { type: 'string' },
            timeout_ms: { type: 'integer', minimum: 100 }, retry_for_ms: { type: 'integer', minimum: 0 },
          },
        },
      ],
    },
    jwt: {
      type: 'object', additionalProperties: false, required: ['alg', 'key_file'],
      properties: { alg: { enum: ['HS256', 'ES256', 'EdDSA'] }, key_file: { type: 'string', minLength: 1 } },
    },
    turn: {
      type: 'object', additionalProperties: false, required: ['urls'],
      properties: {
        urls: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^turns?:' } },
        ttl: { type: 'integer', minimum: 60, maximum: 86400 },
      },
    },
    sfu_nodes: {
      type: 'array', minItems: 1,
      items: {
        type: 'object', additionalProperties: false, required: ['node', 'ip', 'signal_port'],
        properties: { node: { type: 'string', minLength: 1 }, ip: { type: 'string', minLength: 1 }, signal_port: { type: 'integer', minimum: 1, maximum: 65535 } },
      },
    },
    internal_key_file: { type: 'string', minLength: 1 },
    rate_limit: {
      type: 'object', additionalProperties: false,
      properties: { credentials_per_minute: { type: 'integer', minimum: 1 }, room_creates_per_minute: { type: 'integer', minimum: 1 } },
    },
    log_level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    trust_proxy: { type: ['boolean', 'string'] },
    access_log: { type: 'boolean' },
    client_dir: { type: 'string', minLength: 1 },
  },
} as const;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const ajv = new Ajv({ allErrors: true, allowUnionTypes: true });
const validateFile = ajv.compile(configFileSchema);

export function readSecretFile(path: string, field: string): Secret {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new ConfigError(`${field}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (text.length < 16) throw new ConfigError(`${field}: ${path} holds fewer than 16 characters`);
  return new Secret(text);
}

/** The file's shape, no secrets read: the gateway at start, and the controller before a plan. */
export function checkGatewayConfigFile(file: unknown, source = 'gateway config'): GatewayConfigFile {
  if (!validateFile(file)) {
    const msg = (validateFile.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new ConfigError(`${source}: ${msg}`);
  }
  const f = file as unknown as GatewayConfigFile;
  const seen = new Set<string>();
  for (const n of f.sfu_nodes) {
    if (seen.has(n.node)) throw new ConfigError(`${source}: sfu_nodes: node "${n.node}" is listed twice`);
    seen.add(n.node);
  }
  return f;
}

/** Validates a parsed gateway.json and loads the secrets it points at. */
export async function resolveGatewayConfig(file: unknown, source = 'gateway config'): Promise<{ config: GatewayConfig; store: StoreConfig }> {
  const f = checkGatewayConfigFile(file, source);
  const jwtKey = readSecretFile(f.jwt.key_file, 'jwt.key_file');
  let jwt: VerificationKey;
  try {
    jwt = await loadVerificationKey(f.jwt.alg, jwtKey.reveal());
  } catch (e) {
    throw new ConfigError(`jwt.key_file: ${f.jwt.key_file} is not a usable ${f.jwt.alg} verification key (${(e as Error).message.split('\n')[0]})`);
  }
  return {
    store: f.store,
    config: {
      namespace: f.namespace,
      listen: f.listen,
      jwt,
      turn: f.turn,
      sfuNodes: f.sfu_nodes,
      internalKey: readSecretFile(f.internal_key_file, 'internal_key_file'),
      rateLimit: {
        credentialsPerMinute: f.rate_limit?.credentials_per_minute ?? 60,
        roomCreatesPerMinute: f.rate_limit?.room_creates_per_minute ?? 30,
      },
      logLevel: f.log_level ?? 'info',
      trustProxy: f.trust_proxy ?? false,
      accessLog: f.access_log ?? false,
      storeCacheMs: 5000,
      healthCacheMs: 2000,
      clientDir: f.client_dir,
    },
  };
}

export async function loadGatewayConfigFile(path: string): Promise<{ config: GatewayConfig; store: StoreConfig }> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`--config: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not JSON (${(e as Error).message})`);
  }
  return resolveGatewayConfig(parsed, path);
}
