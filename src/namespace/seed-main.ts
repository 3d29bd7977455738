// Runs on one cluster node during `orama namespace enable webrtc` (and `orama apikey …`): writes
// the namespace's WebRTC config, JWT key and API key records (hashes, never keys) into the
// namespace cluster's rqlite, which the gateways read. Input is a JSON document on stdin (secrets
// never on argv; the database URLs come as --urls): { username, password_file, config?, jwtKey?, apiKeys? } to seed, or { username, password_file, remove: NAMESPACE } on
// disable (config and rooms go; the cluster forgets the namespace). Prints what it changed.
import { openStore } from '../store/open.ts';

import { Secret } from '../secret/secret.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The cluster database's URLs: `--urls a,b,c` (the playbooks pass playbooks/vars/cluster.yml's rqlite_urls). */
function urlsFromArgv(argv: string[]): string[] | undefined {
  const i = argv.indexOf('--urls');
  return i >= 0 && argv[i + 1] ? argv[i + 1].split(',').filter(Boolean) : undefined;
}

export async function seed(input: string, urls = urlsFromArgv(process.argv)): Promise<string> {
  const doc = JSON.parse(input);
  if (!urls?.length) throw new Error('--urls URL[,URL…] is required (the cluster database)');
  if (typeof doc.username !== 'string' || typeof doc.password_file !== 'string') throw new Error('the document needs username and password_file (the cluster database user)');
  const store = await openStore({ driver: 'rqlite', urls, username: doc.username, password_file: doc.password_file, retry_for_ms: 30_000 }, { migrate: true });
  try {
    if (doc.remove) {
      for (const r of await store.listRooms(doc.remove)) await store.deleteRoom(doc.remove, r.roomId);
      await store.deleteWebrtcConfig(doc.remove);
      return 'removed';
    }
    const done: string[] = [];
    const c = doc.config;
    if (c) {
      await store.putWebrtcConfig({ namespace: c.namespace, enabled: true, turnSecret: new Secret(c.turn_secret), sfuNodeCount: c.sfu_node_count, turnNodeCount: c.turn_node_count, turnTtl: c.turn_ttl });
      done.push('config');
    }
    if (c && doc.jwtKey) {
      const k = doc.jwtKey;
      await store.putJwtKeyIfAbsent({ namespace: c.namespace, alg: k.alg, kid: k.kid, signingKey: new Secret(k.signing_key), publicKey: k.public_key ?? null });
      done.push('jwt key');
    }
    if (Array.isArray(doc.apiKeys)) done.push(`api keys: ${await store.importApiKeys(doc.apiKeys)} changed`);
    return `seeded ${done.join(', ') || 'nothing'}`;
  } finally {
    await store.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  seed(await readStdin()).then(
    (what) => process.stdout.write(`${what}\n`),
    (e) => {
      process.stderr.write(`orama-seed: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
