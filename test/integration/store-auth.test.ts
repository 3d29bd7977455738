// The store against a real rqlite that requires credentials (as the cluster's does, roles/rqlite):
// the right user works; a wrong password, a user without permission, no user at all or a missing
// password file each give an error that names the database, the user or the file — and no
// password ever appears in an error.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RqliteCluster } from '../helpers/rqlite-cluster.ts';
import { openStore } from '../../src/store/open.ts';

t.test('rqlite with -auth', async (t) => {
  const users = [
    { username: 'join', password: 'join-pass-123456', perms: ['join'] },
    { username: 'probe', password: 'probe-pass-123456', perms: ['ready'] },
    { username: 'gateway', password: 'gateway-pass-123456', perms: ['query', 'execute'] },
  ];
  const db = await RqliteCluster.start(1, users);
  const dir = mkdtempSync(join(tmpdir(), 'store-auth-'));
  t.teardown(async () => { await db.stop(); rmSync(dir, { recursive: true, force: true }); });
  const file = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text + '\n', { mode: 0o600 }); return p; };
  const fail = async (cfg: object) => {
    try { await openStore({ driver: 'rqlite', urls: db.urls, retry_for_ms: 2000, ...cfg } as never); return ''; } catch (e) { return (e as Error).message; }
  };

  const good = await openStore({ driver: 'rqlite', urls: db.urls, username: 'gateway', password_file: file('gw', 'gateway-pass-123456') });
  t.equal((await good.listAllocations()).length, 0, 'the gateway user migrates and queries');
  await good.close();

  const wrong = await fail({ username: 'gateway', password_file: file('wrong', 'not-the-password') });
  t.match(wrong, new RegExp(`rqlite ${db.urls[0]}: HTTP 401: user "gateway" refused`), `a wrong password names the database and the user: ${wrong}`);
  t.notMatch(wrong, /not-the-password/, 'and never the password');
  const none = await fail({});
  t.match(none, /HTTP 401: no user given, and the database requires one/, `no user at all: ${none}`);
  const probe = await fail({ username: 'probe', password_file: file('probe', 'probe-pass-123456') });
  t.match(probe, /HTTP 401: user "probe" refused/, `a user without the query/execute permissions is refused: ${probe}`);
  const missing = await fail({ username: 'gateway', password_file: join(dir, 'nope') });
  t.match(missing, new RegExp(`store.password_file: cannot read ${join(dir, 'nope')}: ENOENT`), `a missing password file is named: ${missing}`);
});
