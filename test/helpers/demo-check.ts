// Used by bin/demo: acts as a client of namespace NS — mints a token, fetches TURN credentials
// from a gateway, and allocates a relay on coturn with them (turnutils_uclient), toward the SFU.
import { execFileSync, spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ns = process.argv[2] ?? 'demo';
const orama = (...a: string[]) => execFileSync('node', [join(root, 'bin', 'orama.js'), ...a], { encoding: 'utf8' });
const status = JSON.parse(orama('namespace', 'webrtc-status', '--namespace', ns, '--json'));
const token = orama('token', 'mint', '--namespace', ns, '--subject', 'demo-user').trim();
const gw = status.nodes[0];
const url = `http://${gw.public_ip}:${Number(gw.ports.sfu_signal) + 1000}/v1/webrtc/turn/credentials`;
const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
const creds = await res.json();
console.log(`POST ${url} → ${res.status}`);
console.log(`  urls: ${creds.urls.join(', ')}\n  username: ${creds.username}\n  ttl: ${creds.ttl}`);
const turn = status.nodes.find((n: any) => n.turn_up);
const r = spawnSync('timeout', ['15', 'turnutils_uclient', '-c', '-n', '3', '-m', '1', '-u', creds.username, '-w', creds.credential, '-e', status.nodes[2].wg_ip, '-p', turn.ports.turn_listen, turn.public_ip], { encoding: 'utf8' });
const sent = Math.max(0, ...[...(r.stdout + r.stderr).matchAll(/tot_send_msgs=(\d+)/g)].map((m) => Number(m[1])));
if (!sent) {
  console.error('TURN allocation FAILED:\n' + (r.stdout + r.stderr).slice(-1500));
  process.exit(1);
}
console.log(`TURN relay allocated on ${turn.public_ip}:${turn.ports.turn_listen} with the gateway's credentials; ${sent} packets relayed toward the SFU at ${status.nodes[2].wg_ip}.`);
console.log(`\nWebRTC is enabled for namespace "${ns}": ${status.nodes.filter((n: any) => n.sfu_up).length} SFUs, ${status.nodes.filter((n: any) => n.turn_up).length} TURN servers, healthy=${status.healthy}.`);
console.log(`A call in a browser that reaches ${gw.public_ip} (two tabs, same room): ${url.replace('/turn/credentials', '/client/demo.html')}?room=hello&token=<JWT>`);
console.log(`  with a token from: node bin/orama.js token mint --namespace ${ns} --subject you`);
