// Used by bin/demo: acts as a client of namespace NS — mints a token, fetches TURN credentials
// from a gateway through a node's HTTPS front (the cluster's CA checked), allocates a relay on coturn with them and sends datagrams through it to a
// listener on the SFU media range of another node, which counts what arrives.
import { execFileSync } from 'node:child_process';
import { TurnClient } from '../../src/webrtc/turn-client.ts';
import { eventually, exitCode, udpListener } from './cluster-shell.ts';
import { frontCa, frontFetch } from './front.ts';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ns = process.argv[2] ?? 'demo';
const orama = (...a: string[]) => execFileSync('node', [join(root, 'bin', 'orama.js'), ...a], { encoding: 'utf8' });
const status = JSON.parse(orama('namespace', 'webrtc-status', '--namespace', ns, '--json'));
const token = orama('token', 'mint', '--namespace', ns, '--subject', 'demo-user').trim();
const gw = status.nodes[0];
const url = `${status.url}/v1/webrtc/turn/credentials`;
const res = await frontFetch(frontCa(process.env.ORAMA_INVENTORY ?? join(root, 'inventory', 'test-cluster.yml')), gw.public_ip, url, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
const creds = res.json();
console.log(`POST ${url} (the front on ${gw.node}, ${gw.public_ip}) → ${res.status}`);
console.log(`  urls: ${creds.urls.join(', ')}\n  username: ${creds.username}\n  ttl: ${creds.ttl}`);
const turn = status.nodes.find((n: any) => n.turn_up);
const sfu = status.nodes.find((n: any) => n.node !== turn.node);
// Proof that media can flow: datagrams sent through a TURN allocation made with the gateway's
// credentials reach a listener on a port of the namespace's SFU media range on another node.
const port = Number(String(sfu.ports.sfu_media).split('-')[1]);
const ready = `/tmp/orama-demo-ready-${process.pid}`;
const received = udpListener(sfu.node, sfu.wg_ip, [port], ready, 4);
await eventually('the listener on the SFU node is bound', async () => (await exitCode(sfu.node, `test -e ${ready}`)) === 0, 10_000);
const client = await TurnClient.open({ host: turn.public_ip, port: Number(turn.ports.turn_listen), transport: 'udp', username: creds.username, password: creds.credential });
const alloc = await client.allocate();
const perm = alloc.ok ? await client.createPermission(sfu.wg_ip) : alloc;
if (!alloc.ok || !perm.ok) {
  console.error(`TURN allocation FAILED on ${turn.public_ip}:${turn.ports.turn_listen}: ${JSON.stringify(alloc.ok ? perm : alloc)}`);
  process.exit(1);
}
for (let i = 0; i < 5; i++) client.send({ ip: sfu.wg_ip, port }, Buffer.from(`orama demo ${i}`));
const got = (await received)[port];
await client.close();
if (!got) {
  console.error(`TURN relay FAILED: nothing reached ${sfu.wg_ip}:${port}`);
  process.exit(1);
}
console.log(`TURN relay allocated on ${turn.public_ip}:${turn.ports.turn_listen} (relayed address ${alloc.relayed.ip}:${alloc.relayed.port}) with the gateway's credentials; ${got} of 5 datagrams reached the SFU media port ${sfu.wg_ip}:${port} on ${sfu.node}.`);
console.log(`\nWebRTC is enabled for namespace "${ns}": ${status.nodes.filter((n: any) => n.sfu_up).length} SFUs, ${status.nodes.filter((n: any) => n.turn_up).length} TURN servers, healthy=${status.healthy}.`);
