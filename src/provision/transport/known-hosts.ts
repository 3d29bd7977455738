// known_hosts verification: OpenSSH's file format (plain and hashed names, [host]:port),
// trust-on-first-use only when asked, and a loud error when a host's key CHANGED.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import { dirname } from 'node:path';

export type KeyCheck = { ok: true; added?: boolean } | { ok: false; reason: string };

function hostNames(address: string, port: number): string[] {
  return port === 22 ? [address, `[${address}]:22`] : [`[${address}]:${port}`];
}

function matches(pattern: string, names: string[]): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    return names.some((n) => createHmac('sha1', Buffer.from(salt, 'base64')).update(n).digest('base64') === hash);
  }
  return pattern.split(',').some((p) => names.includes(p));
}

function keyType(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('ascii');
}

export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export function checkHostKey(file: string, address: string, port: number, blob: Buffer, acceptNew: boolean): KeyCheck {
  const names = hostNames(address, port);
  const type = keyType(blob);
  const offered = blob.toString('base64');
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
  let sameTypeMismatch: { line: number; key: string } | undefined;
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('@')) continue;
    const [pattern, t, key] = line.split(/\s+/);
    if (!key || !matches(pattern, names)) continue;
    if (t === type && key === offered) return { ok: true };
    if (t === type) sameTypeMismatch = { line: i + 1, key };
  }
  if (sameTypeMismatch) {
    const known = fingerprint(Buffer.from(sameTypeMismatch.key, 'base64'));
    return {
      ok: false,
      reason: `HOST KEY CHANGED for ${address}:${port}: ${file} line ${sameTypeMismatch.line} has ${type} ${known}, the host offered ${fingerprint(blob)}. If the host was rebuilt, remove that line and rerun with --accept-new-host-keys.`,
    };
  }
  if (!acceptNew) {
    return { ok: false, reason: `host key of ${address}:${port} is not known (${type} ${fingerprint(blob)} not in ${file}); verify it and rerun with --accept-new-host-keys to trust it` };
  }
  mkdirSync(dirname(file), { recursive: true });
  const name = port === 22 ? address : `[${address}]:${port}`;
  appendFileSync(file, `${name} ${type} ${offered}\n`, { mode: 0o600 });
  return { ok: true, added: true };
}
