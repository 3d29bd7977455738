// `orama-provision cluster …`: the command-line face of the test cluster.
import { spawnSync } from 'node:child_process';
import { clusterConfig, nodeConfig } from './config.ts';
import { clusterDown, clusterLeftovers, clusterStatus, clusterUp, powerOffClusterNode, rebootClusterNode, startClusterNode, stopClusterNode } from './cluster.ts';
import { sshArgv } from './ssh.ts';

const USAGE = `usage: orama-provision cluster <verb>
  up                 build the image if needed (cached), boot all nodes, write the inventory
  down [--wipe]      stop nodes, remove every netns/bridge/mount/cgroup/rule; --wipe also forgets node state
  status             one line per node
  ssh N [cmd…]       ssh into node N as root (interactive without cmd)
  stop N | start N   stop / start one node (a clean shutdown: services get SIGTERM and drain)
  poweroff N         node N loses power: its links go down, every process is SIGKILLed (peers
                     see silence, no FIN); \`start N\` boots it again
  reboot N           \`systemctl reboot\` inside node N and wait until it is back
  leftovers          what of the cluster is still on this machine (processes, mounts, netns,
                     links, cgroups, firewall rules); exit 3 if anything is
environment: ORAMA_CLUSTER_NAME (default "default"), ORAMA_CLUSTER_NODES (3),
  ORAMA_CLUSTER_DIR (/var/lib/orama-test-cluster), ORAMA_CACHE_DIR (/var/cache/orama-provision)
`;

const log = (m: string) => process.stderr.write(`cluster: ${m}\n`);

function nodeIndex(arg: string | undefined): number {
  const i = Number(String(arg ?? '').replace(/^node/, ''));
  if (!Number.isInteger(i) || i < 1) throw new Error(`expected a node number (1, 2, … or node1, …), got "${arg ?? ''}"`);
  return i;
}

export async function clusterCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'up': {
        const t0 = Date.now();
        const info = await clusterUp({}, log);
        log(`up in ${((Date.now() - t0) / 1000).toFixed(1)}s; inventory: ${info.inventory}`);
        for (const h of info.hosts) process.stdout.write(`${h.name}\t${h.publicIp}\t${h.internalIp}\n`);
        return 0;
      }
      case 'down':
        await clusterDown({ wipe: rest.includes('--wipe') }, log);
        return 0;
      case 'status': {
        const nodes = await clusterStatus();
        if (!nodes.length) process.stdout.write('no nodes\n');
        for (const n of nodes) {
          process.stdout.write(`${n.name}\t${n.publicIp}\t${n.internalIp}\t${n.running ? `running (nspawn pid ${n.pid ?? '?'})` : 'stopped'}\tssh ${n.ssh ? 'ok' : 'no'}\n`);
        }
        return nodes.length && nodes.every((n) => n.running && n.ssh) ? 0 : 3;
      }
      case 'ssh': {
        const c = clusterConfig();
        const n = nodeConfig(c, nodeIndex(rest[0]));
        const [bin, ...args] = sshArgv(c, n, 'root', rest.slice(1));
        const interactive = rest.length === 1 && process.stdin.isTTY;
        const r = spawnSync(bin, interactive ? ['-t', ...args] : args, { stdio: 'inherit' });
        return r.status ?? 255;
      }
      case 'stop': await stopClusterNode(nodeIndex(rest[0])); return 0;
      case 'start': await startClusterNode(nodeIndex(rest[0])); return 0;
      case 'reboot': await rebootClusterNode(nodeIndex(rest[0])); return 0;
      case 'poweroff': await powerOffClusterNode(nodeIndex(rest[0])); return 0;
      case 'leftovers': {
        const left = Object.entries(await clusterLeftovers()).filter(([, v]) => v.length);
        for (const [kind, items] of left) process.stdout.write(`${kind}: ${items.join(', ')}\n`);
        return left.length ? 3 : 0;
      }
      case undefined: case '-h': case '--help':
        process.stdout.write(USAGE);
        return verb ? 0 : 1;
      default:
        process.stderr.write(`cluster: unknown verb "${verb}"\n${USAGE}`);
        return 1;
    }
  } catch (e: any) {
    process.stderr.write(`cluster ${verb}: ${e?.message ?? e}\n`);
    return 1;
  }
}
