// orama-namespace-sfu@NS entry point:
//   node --import tsx src/sfu/main.ts --config /etc/orama/webrtc/NS/sfu.json
// SIGTERM/SIGINT: announce server-draining, refuse joins, wait for peers to leave or the
// drain deadline, exit 0 (the unit's TimeoutStopSec must exceed drain_deadline_s).
import { parseArgs } from 'node:util';
import { loadSfuConfig } from './config.ts';
import { startSfu } from './server.ts';

const { values } = parseArgs({ options: { config: { type: 'string' } } });
if (!values.config) {
  process.stderr.write('usage: sfu --config /etc/orama/webrtc/<namespace>/sfu.json\n');
  process.exit(2);
}

const config = loadSfuConfig(values.config);
const running = await startSfu(config);
const log = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), event, namespace: config.namespace, ...fields }) + '\n');
running.sfu.log = log;
log('listening', { address: `${running.address.host}:${running.address.port}`, engine: running.sfu.engine.name, media_ports: config.mediaPorts, relay_ips: config.turnRelayIps });
// A mediasoup worker died: its rooms' media is gone. /health says so at once; the process exits
// a second later for systemd to restart it (Restart=), and clients rejoin (the gateway closes
// their sockets with 4011 when the SFU's drop).
running.onEngineFailure = (reason) => {
  log('engine-failed', { reason });
  setTimeout(() => process.exit(1), 1000).unref();
};

// A media-library promise rejecting somewhere must not end every call on this node: log, go on.
process.on('unhandledRejection', (reason) => log('unhandled-rejection', { error: String((reason as Error)?.message ?? reason).slice(0, 300) }));

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log('draining', { signal, peers: running.sfu.peerCount(), deadline_s: config.drainDeadlineS });
  await running.drain();
  log('drained', { peers_left: running.sfu.peerCount() });
  await running.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
