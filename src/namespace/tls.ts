// TURN over TLS material the inventory declares, checked on the controller before anything runs.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ProvisionError } from '../provision/errors.ts';
import { Secret } from '../secret/secret.ts';
import type { Cluster } from './nodes.ts';

export interface TurnTls { cert: string; key: Secret }

/**
 * TURN over TLS is declared in the inventory: `turn_tls_cert` and `turn_tls_key` (PEM files on the
 * controller, relative to the inventory file) on a TURN node — usually as group vars of
 * `cluster`. Checked here, before anything runs: both or neither, readable, a certificate that
 * has not expired and the key that belongs to it. Returns the material of the TURN nodes that have it.
 */
export function turnTlsMaterial(cluster: Cluster, turnNodes: string[]): Map<string, TurnTls> {
  const inventoryFile = cluster.inventoryFile;
  const out = new Map<string, TurnTls>();
  for (const h of cluster.nodes) {
    const vars = h.vars;
    const certPath = vars.turn_tls_cert ?? undefined;
    const keyPath = vars.turn_tls_key ?? undefined;
    if (certPath === undefined && keyPath === undefined) continue;
    const where = `host ${h.name}`;
    if (typeof certPath !== 'string' || typeof keyPath !== 'string') throw new ProvisionError(`${where}: turn_tls_cert and turn_tls_key go together (file paths); only ${certPath === undefined ? 'turn_tls_key' : 'turn_tls_cert'} is set`, { file: inventoryFile });
    if (!turnNodes.includes(h.name)) continue;
    const read = (p: string, v: string) => {
      const file = resolve(dirname(inventoryFile), p);
      try { return readFileSync(file, 'utf8'); } catch (e) { throw new ProvisionError(`${where}: ${v}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: inventoryFile }); }
    };
    const certPem = read(certPath, 'turn_tls_cert');
    const keyPem = read(keyPath, 'turn_tls_key');
    let cert: X509Certificate;
    try { cert = new X509Certificate(certPem); } catch { throw new ProvisionError(`${where}: turn_tls_cert: ${certPath} is not a PEM certificate`, { file: inventoryFile }); }
    if (Date.parse(cert.validTo) < Date.now()) throw new ProvisionError(`${where}: turn_tls_cert: ${certPath} expired on ${cert.validTo}`, { file: inventoryFile });
    let matches = false;
    try { matches = cert.checkPrivateKey(createPrivateKey(keyPem)); } catch { throw new ProvisionError(`${where}: turn_tls_key: ${keyPath} is not a PEM private key`, { file: inventoryFile }); }
    if (!matches) throw new ProvisionError(`${where}: turn_tls_key: ${keyPath} is not the key of the certificate ${certPath}`, { file: inventoryFile });
    out.set(h.name, { cert: certPem, key: new Secret(keyPem) });
  }
  return out;
}

/**
 * The HTTPS front's certificate (roles/front: `front_tls_cert`, a controller path, absolute or
 * relative to the inventory file) must name the namespace's host, ns-NAME.BASE, on every node —
 * checked before anything runs, so a wrong base domain fails `enable --plan`, not a browser.
 */
export function checkFrontCertificate(cluster: Cluster, host: string): void {
  for (const h of cluster.nodes) {
    const p = h.vars.front_tls_cert;
    const where = `host ${h.name}`;
    if (typeof p !== 'string' || !p) throw new ProvisionError(`${where}: front_tls_cert is not set: the HTTPS front needs a certificate naming ${host} (\`orama-provision cluster up\` writes one for the test cluster; docs/operations.md, "HTTPS front")`, { file: cluster.inventoryFile });
    const file = resolve(dirname(cluster.inventoryFile), p);
    let cert: X509Certificate;
    try { cert = new X509Certificate(readFileSync(file)); } catch (e) { throw new ProvisionError(`${where}: front_tls_cert: cannot read a PEM certificate from ${file} (${(e as NodeJS.ErrnoException).code ?? 'not PEM'})`, { file: cluster.inventoryFile }); }
    if (!cert.checkHost(host)) throw new ProvisionError(`${where}: front_tls_cert ${file} names ${cert.subjectAltName ?? cert.subject}, not ${host}: enable with the base domain the certificate is for (--base-domain, --env), or pass a certificate for *.<base domain>`, { file: cluster.inventoryFile });
    if (Date.parse(cert.validTo) < Date.now()) throw new ProvisionError(`${where}: front_tls_cert ${file} expired on ${cert.validTo}`, { file: cluster.inventoryFile });
  }
}
