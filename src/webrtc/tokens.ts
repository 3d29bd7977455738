// JWTs of a namespace, with fast-jwt: key generation and minting (operator CLI) and verification
// (gateway). Claims: namespace, sub, exp, and role "owner" (or owner: true) for owners.
// Key material per namespace lives in the store (namespace_jwt_keys): HS256 by default — a
// namespace's gateway is its own enforcement point, so holding the HMAC key gives it no power it
// lacks — with ES256/EdDSA available when tokens are minted elsewhere than they are verified.
// fast-jwt verifies synchronously with node:crypto (about 10 µs for HS256, 140 µs for EdDSA on
// this machine class); jose 6, used first, verified through WebCrypto only, at 150–250 µs a token.
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createSigner, createVerifier, TokenError as FastJwtError } from 'fast-jwt';
import { Secret } from '../secret/secret.ts';

export type JwtAlg = 'HS256' | 'ES256' | 'EdDSA';
/** A namespace's JWT signing key (stored by the store, used by the gateway and `orama token`). */
export interface JwtKey {
  namespace: string;
  alg: JwtAlg;
  kid: string;
  /** HS256: the shared secret; ES256/EdDSA: PKCS#8 PEM private key. */
  signingKey: Secret;
  /** HS256: null (the secret verifies); ES256/EdDSA: SPKI PEM public key. */
  publicKey: string | null;
  createdAt: number;
}

/** What a gateway verifies with: the HS256 secret, or the public key PEM of ES256/EdDSA. */
export interface VerificationKey {
  alg: JwtAlg;
  key: Secret;
}

export interface TokenClaims {
  namespace: string;
  sub: string;
  owner: boolean;
  exp: number;
}

/** Clock skew allowed between the minting host and the gateway. */
export const CLOCK_TOLERANCE_SECONDS = 5;

const PUBLIC_KEY_TYPE: Record<Exclude<JwtAlg, 'HS256'>, { type: string; curve?: string }> = {
  EdDSA: { type: 'ed25519' },
  ES256: { type: 'ec', curve: 'prime256v1' },
};

/** Checks the material fits the algorithm (throws naming what is wrong, never the material). */
export function loadVerificationKey(alg: JwtAlg, material: string): VerificationKey {
  if (alg === 'HS256') {
    if (material.length < 32) throw new Error('an HS256 secret needs at least 32 characters');
    return { alg, key: new Secret(material) };
  }
  let pub;
  try {
    pub = createPublicKey(material);
  } catch {
    throw new Error(`not a PEM public key`);
  }
  const want = PUBLIC_KEY_TYPE[alg];
  const curve = pub.asymmetricKeyDetails?.namedCurve;
  if (pub.asymmetricKeyType !== want.type || (want.curve && curve !== want.curve)) {
    throw new Error(`a ${alg} key must be ${want.type}${want.curve ? ` ${want.curve}` : ''}, got ${pub.asymmetricKeyType}${curve ? ` ${curve}` : ''}`);
  }
  return { alg, key: new Secret(material) };
}

/** New key material for a namespace (stored with putJwtKeyIfAbsent). */
export function generateJwtKey(namespace: string, alg: JwtAlg = 'HS256'): Omit<JwtKey, 'createdAt'> {
  const kid = randomBytes(8).toString('hex');
  if (alg === 'HS256') return { namespace, alg, kid, signingKey: new Secret(randomBytes(32).toString('base64url')), publicKey: null };
  const pair = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    namespace, alg, kid,
    signingKey: new Secret(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** What the gateway's jwt.key_file holds: the HS256 secret, or the public key PEM. */
export function verificationKeyText(k: JwtKey | Omit<JwtKey, 'createdAt'>): string {
  return k.alg === 'HS256' ? k.signingKey.reveal() : k.publicKey!;
}

export async function mintToken(k: Omit<JwtKey, 'createdAt'>, claims: { subject: string; owner: boolean; ttl: number; now?: number }): Promise<string> {
  const now = claims.now ?? Math.floor(Date.now() / 1000);
  const sign = createSigner({ key: k.signingKey.reveal(), algorithm: k.alg, kid: k.kid, clockTimestamp: now * 1000, expiresIn: claims.ttl * 1000 });
  return sign({ namespace: k.namespace, role: claims.owner ? 'owner' : 'member', sub: claims.subject });
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/**
 * A synchronous verifier of one namespace's tokens: signature, algorithm (only the key's own),
 * exp (required, 5 s tolerance), sub and namespace. Throws TokenError saying why, never echoing
 * the token. (fast-jwt's own cache is not used: by default it hashes every token for its key,
 * which cost more than an HS256 verification, and a custom key builder makes it print a security
 * warning at start-up; the gateway keeps its verified principals itself, auth.ts.)
 */
export function tokenVerifier(vk: VerificationKey): (token: string) => TokenClaims {
  const verify = createVerifier({
    key: vk.key.reveal(),
    algorithms: [vk.alg],
    requiredClaims: ['exp', 'sub', 'namespace'],
    clockTolerance: CLOCK_TOLERANCE_SECONDS * 1000,
  });
  return (token) => {
    let payload: Record<string, unknown>;
    try {
      payload = verify(token);
    } catch (e) {
      throw new TokenError(reason(e, vk.alg));
    }
    if (typeof payload.namespace !== 'string') throw new TokenError('token claim "namespace" invalid');
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 255) throw new TokenError('token claim "sub" invalid');
    if (typeof payload.exp !== 'number') throw new TokenError('token claim "exp" invalid');
    const owner = payload.role === 'owner' || payload.owner === true;
    return { namespace: payload.namespace, sub: payload.sub, owner, exp: payload.exp };
  };
}

/** One-off verification (tests, CLI); the gateway keeps a tokenVerifier. */
export function verifyToken(token: string, vk: VerificationKey): TokenClaims {
  return tokenVerifier(vk)(token);
}

function reason(e: unknown, alg: JwtAlg): string {
  if (!(e instanceof FastJwtError)) return 'token malformed';
  const c = FastJwtError.codes;
  switch (e.code) {
    case c.expired: return 'token expired';
    case c.inactive: return 'token not valid yet';
    case c.invalidSignature: return 'token signature invalid';
    case c.invalidAlgorithm: return `token algorithm not allowed (expected ${alg})`;
    case c.missingRequiredClaim:
    case c.invalidClaimType:
    case c.invalidClaimValue: {
      // fast-jwt's own messages name the claim ("The exp claim is required."), never its value.
      const claim = /The (\w+) claim/.exec(e.message)?.[1];
      return claim ? `token claim "${claim}" ${e.code === c.missingRequiredClaim ? 'missing' : 'invalid'}` : 'token claims invalid';
    }
    default: return 'token malformed';
  }
}
