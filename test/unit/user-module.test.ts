// The user module's facts parser against real getent output shapes (passwd line, "--", group line).
import t from 'tap';
import { parseGetent } from '../../src/provision/modules/user.ts';

t.test('getent passwd and group output', async (t) => {
  const f = parseGetent('orama-turn-demo:x:998:998:orama coturn of namespace demo:/nonexistent:/usr/sbin/nologin\n--\norama-turn-demo:x:998:\n');
  t.same(f.user, { name: 'orama-turn-demo', uid: 998, gid: 998, comment: 'orama coturn of namespace demo', home: '/nonexistent', shell: '/usr/sbin/nologin' });
  t.same(f.group, { name: 'orama-turn-demo', gid: 998 });
  t.same(parseGetent('--\n'), {}, 'no such user, no such group');
  t.same(parseGetent('\n--\nturnserver:x:107:\n'), { group: { name: 'turnserver', gid: 107 } }, 'a group without the user');
});
