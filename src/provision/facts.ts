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
}

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
].join('\n');

export function parseFacts(out: string): HostFacts {
  const [host, osr, sd, addrs, ports] = out.split('---\n');
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
  return {
    hostname: host.trim(),
    os: { id: os.id, version_id: os.version_id, pretty_name: os.pretty_name },
    systemd: sd?.trim() === 'yes',
    interfaces,
    listening_ports: { tcp: [...tcp].sort((a, b) => a - b), udp: [...udp].sort((a, b) => a - b) },
  };
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
