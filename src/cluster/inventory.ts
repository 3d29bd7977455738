// The inventory `cluster up` writes: Ansible's YAML inventory shape with our engine's connection keys.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { type ClusterConfig, type NodeConfig, keyPath, knownHostsPath, tlsDir } from './config.ts';
import { ensureFrontTls } from '../secret/ca.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The cluster database's passwords (roles/rqlite, lookup('password')) live with the nodes' own
 * state, not beside the inventory: a fresh clone of the repository, which writes a new inventory,
 * must render the same users file the nodes already run with.
 */
export const dbCredentialsDir = (c: ClusterConfig) => join(c.stateDir, 'credentials', 'rqlite');

export function inventoryPath(c: ClusterConfig): string {
  return join(REPO, 'inventory', c.name === 'default' ? 'test-cluster.yml' : `test-cluster-${c.name}.yml`);
}

/** The inventory document (pure: tested by value). */
export function inventoryDocument(c: ClusterConfig, nodes: NodeConfig[]) {
  const key = keyPath(c);
  const tls = tlsDir(c);
  const hosts = Object.fromEntries(nodes.map((n) => [n.name, {
    address: n.publicIp, port: 22, user: 'root', key, known_hosts: knownHostsPath(c),
    public_ip: n.publicIp, internal_ip: n.internalIp, wg_ip: n.wgIp,
  }]));
  return {
    all: {
      vars: {
        ssh_key: key, rqlite_credentials_dir: dbCredentialsDir(c),
        // The HTTPS front (roles/front): a certificate for *.<base domain> from the cluster's own
        // CA (front_ca: what a browser of the tests, or a person, trusts).
        front_tls_cert: join(tls, 'front.pem'), front_tls_key: join(tls, 'front.key'), front_ca: join(tls, 'ca.pem'),
      },
      hosts,
      children: { cluster: { hosts: Object.fromEntries(nodes.map((n) => [n.name, {}])) } },
    },
  };
}

export function writeInventory(c: ClusterConfig, nodes: NodeConfig[]): string {
  const path = inventoryPath(c);
  ensureFrontTls(tlsDir(c), c.baseDomain);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `# written by \`orama-provision cluster up\` — do not edit\n${YAML.stringify(inventoryDocument(c, nodes))}`);
  return path;
}
