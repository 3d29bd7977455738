// A small certificate authority for clusters without real certificates (the test cluster, the
// Vagrant VMs): a CA and a wildcard certificate for the HTTPS front, made with Debian's openssl.
// Keys are written 0600 by openssl itself (umask), never passed on a command line or printed.
// Kept across runs: the CA a person trusted once stays the CA; a certificate is re-issued only
// when it is missing, names something else or expires within 30 days.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FrontTls {
  /** The CA's certificate (what a browser trusts). */
  ca: string;
  /** The front's certificate (*.DOMAIN and DOMAIN) and its key. */
  cert: string;
  key: string;
}

const RENEW_MS = 30 * 86400_000;

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n').slice(-2).join(' ');
    throw new Error(`openssl ${args[0]} in ${cwd} failed: ${err || (e as Error).message}`);
  }
}

const names = (c: X509Certificate) => (c.subjectAltName ?? '').split(',').map((s) => s.trim().replace(/^DNS:/, ''));

/** The CA in `dir` (made if missing) and a front certificate for `*.domain` signed by it. */
export function ensureFrontTls(dir: string, domain: string): FrontTls {
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(domain)) throw new Error(`"${domain}" is not a DNS domain (lowercase labels, at least two)`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const out: FrontTls = { ca: join(dir, 'ca.pem'), cert: join(dir, 'front.pem'), key: join(dir, 'front.key') };
  const caKey = join(dir, 'ca.key');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const old = process.umask(0o077);
  try {
    if (!existsSync(out.ca) || !existsSync(caKey)) {
      openssl(['req', '-x509', ...ec, '-keyout', caKey, '-out', out.ca, '-days', '3650', '-subj', `/CN=orama test CA (${domain})`,
        '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
      rmSync(out.cert, { force: true });
    }
    const wanted = [`*.${domain}`, domain];
    if (existsSync(out.cert) && existsSync(out.key)) {
      const c = new X509Certificate(readFileSync(out.cert));
      const ca = new X509Certificate(readFileSync(out.ca));
      const fresh = Date.parse(c.validTo) - Date.now() > RENEW_MS;
      if (fresh && c.verify(ca.publicKey) && wanted.every((n) => names(c).includes(n))) return out;
    }
    const csr = join(dir, 'front.csr');
    const ext = join(dir, 'front.ext');
    writeFileSync(ext, [`subjectAltName=${wanted.map((n) => `DNS:${n}`).join(',')}`, 'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', ''].join('\n'));
    openssl(['req', ...ec, '-keyout', out.key, '-out', csr, '-subj', `/CN=*.${domain}`], dir);
    // 397 days: the longest validity browsers accept for a server certificate.
    openssl(['x509', '-req', '-in', csr, '-CA', out.ca, '-CAkey', caKey, '-CAcreateserial', '-days', '397', '-extfile', ext, '-out', out.cert], dir);
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
    chmodSync(out.ca, 0o644);
    chmodSync(out.cert, 0o644);
    return out;
  } finally {
    process.umask(old);
  }
}
