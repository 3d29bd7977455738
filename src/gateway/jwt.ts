// JWTs of a namespace, with jose: key generation and minting (operator CLI) and verification
// (gateway). Claims: namespace, sub, exp, and role "owner" (or owner: true) for owners.
// Key material per namespace lives in the store (namespace_jwt_keys): HS256 by default — a
// namespace's gateway is its own enforcement point, so holding the HMAC key gives it no power it
// lacks — with ES256/EdDSA available when tokens are minted elsewhere than they are verified.
// WebCrypto keys are imported once: jose 6 runs on WebCrypto and re-importing per request costs
// more than the verification itself.
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import { SignJWT, importPKCS8, importSPKI, jwtVerify, errors as joseErrors } from 'jose';
import { Secret } from '../secret/secret.ts';
import type { JwtAlg, JwtKey } from '../store/store.ts';

export interface VerificationKey {
  alg: JwtAlg;
  key: webcrypto.CryptoKey;
}

export interface TokenClaims {
  namespace: string;
  sub: string;
  owner: boolean;
  exp: number;
}

const enc = new TextEncoder();

export async function loadVerificationKey(alg: JwtAlg, material: string): Promise<VerificationKey> {
  if (alg === 'HS256') {
    if (material.length < 32) throw new Error('an HS256 secret needs at least 32 characters');
    const key = await webcrypto.subtle.importKey('raw', enc.encode(material), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    return { alg, key };
  }
  return { alg, key: await importSPKI(material, alg) as webcrypto.CryptoKey };
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
  const signKey = k.alg === 'HS256' ? enc.encode(k.signingKey.reveal()) : await importPKCS8(k.signingKey.reveal(), k.alg);
  const now = claims.now ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ namespace: k.namespace, role: claims.owner ? 'owner' : 'member' })
    .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT' })
    .setSubject(claims.subject)
    .setIssuedAt(now)
    .setExpirationTime(now + claims.ttl)
    .sign(signKey);
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/** Verifies signature, algorithm and claims; the message says why, never echoing the token. */
export async function verifyToken(token: string, vk: VerificationKey): Promise<TokenClaims> {
  let payload;
  try {
    ({ payload } = await jwtVerify(token, vk.key, { algorithms: [vk.alg], requiredClaims: ['exp', 'sub', 'namespace'], clockTolerance: 5 }));
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) throw new TokenError('token expired');
    if (e instanceof joseErrors.JWTClaimValidationFailed) throw new TokenError(`token claim "${e.claim}" invalid`);
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw new TokenError('token signature invalid');
    if (e instanceof joseErrors.JOSEAlgNotAllowed) throw new TokenError(`token algorithm not allowed (expected ${vk.alg})`);
    throw new TokenError('token malformed');
  }
  if (typeof payload.namespace !== 'string') throw new TokenError('token claim "namespace" invalid');
  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 255) throw new TokenError('token claim "sub" invalid');
  const owner = payload.role === 'owner' || payload.owner === true;
  return { namespace: payload.namespace, sub: payload.sub, owner, exp: payload.exp! };
}
