// Host facts: gathered in one round trip the first time something needs them, cached per run.
import type { Transport } from './transport/transport.ts';

export interface HostFacts {
  hostname: string;
  os: { id?: string; version_id?: string; pretty_name?: string };
  systemd: boolean;
  /** interface name → IPv4 addresses (wg0 included when up) */
  interfaces: Record<string, string[]>;
  /** TCP/UDP ports something listens on. */
  listening_ports: { tcp: number[]; udp: number[] };
  /** The same facts under Ansible's names, for roles written for Ansible (`ansible_facts['os_family']`). */
  ansible: AnsibleFacts;
}

export interface AnsibleFacts {
  hostname: string;
  fqdn: string;
  os_family: string;
  distribution: string;
  distribution_release: string;
  distribution_major_version: string;
  distribution_version: string;
  architecture: string;
  processor_vcpus: number;
  memtotal_mb: number;
  service_mgr: string;
  all_ipv4_addresses: string[];
  default_ipv4: { address?: string; interface?: string; gateway?: string };
  interfaces: string[];
}

/** os-release ID (and ID_LIKE) → Ansible's os_family. */
const OS_FAMILY: Record<string, string> = { debian: 'Debian', ubuntu: 'Debian', rhel: 'RedHat', fedora: 'RedHat', centos: 'RedHat', rocky: 'RedHat', almalinux: 'RedHat', alpine: 'Alpine', arch: 'Archlinux', suse: 'Suse', opensuse: 'Suse' };

const SCRIPT = [
  'hostname',
  'echo ---',
  'cat /etc/os-release 2>/dev/null',
  'echo ---',
  '[ -d /run/systemd/system ] && echo yes || echo no',
  'echo ---',
  "ip -4 -o addr show 2>/dev/null | awk '{print $2, $4}'",
  'echo ---',
  "ss -Htlnu 2>/dev/null | awk '{print $1, $5}'",
  'echo ---',
  // Ansible's extra facts: fqdn, architecture, vCPUs, memory (kB), the default route.
  'hostname -f 2>/dev/null || hostname',
  'uname -m',
  'nproc 2>/dev/null || echo 1',
  "awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null",
  "ip -4 route show default 2>/dev/null | head -1",
].join('\n');

export function parseFacts(out: string): HostFacts {
  const [host, osr, sd, addrs, ports, extra] = out.split('---\n');
  const os: Record<string, string> = {};
  for (const line of (osr ?? '').split('\n')) {
    const m = /^([A-Z_]+)="?([^"]*)"?$/.exec(line);
    if (m) os[m[1].toLowerCase()] = m[2];
  }
  const interfaces: Record<string, string[]> = {};
  for (const line of (addrs ?? '').trim().split('\n').filter(Boolean)) {
    const [ifname, cidr] = line.split(' ');
    (interfaces[ifname] ??= []).push(cidr.split('/')[0]);
  }
  const tcp = new Set<number>();
  const udp = new Set<number>();
  for (const line of (ports ?? '').trim().split('\n').filter(Boolean)) {
    const [proto, local] = line.split(' ');
    const port = Number(local.slice(local.lastIndexOf(':') + 1));
    (proto === 'tcp' ? tcp : udp).add(port);
  }
  const hostname = host.trim();
  const [fqdn = hostname, arch = '', vcpus = '1', memKb = '0', route = ''] = (extra ?? '').split('\n');
  const defaultIf = /\bdev (\S+)/.exec(route)?.[1];
  const family = OS_FAMILY[os.id ?? ''] ?? (os.id_like ?? '').split(' ').map((x) => OS_FAMILY[x]).find(Boolean) ?? (os.id ? os.id[0].toUpperCase() + os.id.slice(1) : 'Linux');
  const ansible: AnsibleFacts = {
    hostname: hostname.split('.')[0],
    fqdn: fqdn.trim() || hostname,
    os_family: family,
    distribution: os.name?.split(' ')[0] ?? (os.id ? os.id[0].toUpperCase() + os.id.slice(1) : 'Linux'),
    distribution_release: os.version_codename ?? '',
    distribution_major_version: (os.version_id ?? '').split('.')[0],
    distribution_version: os.version_id ?? '',
    architecture: arch.trim(),
    processor_vcpus: Number(vcpus) || 1,
    memtotal_mb: Math.floor(Number(memKb) / 1024),
    service_mgr: sd?.trim() === 'yes' ? 'systemd' : 'unknown',
    all_ipv4_addresses: Object.entries(interfaces).filter(([i]) => i !== 'lo').flatMap(([, a]) => a),
    default_ipv4: defaultIf ? { interface: defaultIf, address: interfaces[defaultIf]?.[0], gateway: /\bvia (\S+)/.exec(route)?.[1] } : {},
    interfaces: Object.keys(interfaces),
  };
  return {
    hostname,
    os: { id: os.id, version_id: os.version_id, pretty_name: os.pretty_name },
    systemd: sd?.trim() === 'yes',
    interfaces,
    listening_ports: { tcp: [...tcp].sort((a, b) => a - b), udp: [...udp].sort((a, b) => a - b) },
    ansible,
  };
}

/** The variables Ansible users expect from gathered facts: `ansible_facts` and the `ansible_<fact>` aliases. */
export function ansibleFactVars(f: HostFacts): Record<string, unknown> {
  const out: Record<string, unknown> = { ansible_facts: f.ansible };
  for (const [k, v] of Object.entries(f.ansible)) out[`ansible_${k}`] = v;
  return out;
}

export class FactCache {
  #pending?: Promise<HostFacts>;
  constructor(private transport: Transport) {}
  get(): Promise<HostFacts> {
    this.#pending ??= this.transport.exec(SCRIPT).then((r) => parseFacts(r.stdout));
    return this.#pending;
  }
  /** After changes (e.g. wg0 came up) a later `gather_facts`/setup must see the new state. */
  invalidate(): void {
    this.#pending = undefined;
  }
}
