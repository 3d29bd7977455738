// ufw facts: /etc/ufw/user.rules tuple lines → rule keys, and the keys' round trip back to the exact
// words `ufw delete` needs (ufw deletes by the same words it added).
import t from 'tap';
import { keyToSpec, parseUfwFacts, parseUserRules, planUfw, ruleKey, UFW_LOCK, type UfwRule } from '../../src/provision/modules/ufw.ts';

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');

// As ufw writes it (backend_iptables._write_rules): one tuple comment per rule, then its iptables lines.
const USER_RULES = `*filter
:ufw-user-input - [0:0]
### RULES ###

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=${hex('orama:node-base')}
-A ufw-user-input -p tcp --dport 22 -j ACCEPT

### tuple ### allow any any 0.0.0.0/0 any 10.0.0.0/24 in comment=${hex('orama:node-base')}
-A ufw-user-input -s 10.0.0.0/24 -j ACCEPT

### tuple ### allow udp 20000:20499 10.0.0.2 49152:49951 10.0.0.1 in_wg0 comment=${hex('orama:sfu-mesh')}
-A ufw-user-input -i wg0 -p udp -m multiport --dports 20000:20499 -m multiport --sports 49152:49951 -d 10.0.0.2 -s 10.0.0.1 -j ACCEPT

### tuple ### allow tcp 4001,4002,5000:5010 0.0.0.0/0 any 10.0.0.0/24 in
-A ufw-user-input -p tcp -m multiport --dports 4001,4002,5000:5010 -s 10.0.0.0/24 -j ACCEPT

### tuple ### allow any any 0.0.0.0/0 any 0.0.0.0/0 in_wg0
-A ufw-user-input -i wg0 -j ACCEPT

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in
### tuple ### deny tcp 25 0.0.0.0/0 any 0.0.0.0/0 out
### tuple ### route:allow any any 0.0.0.0/0 any 0.0.0.0/0 in_eth0!out_eth1

### END RULES ###
COMMIT
`;

const EXTENDED: UfwRule = { interface: 'wg0', proto: 'udp', from: '10.0.0.1', from_port: '49152-49951', to: '10.0.0.2', port: '20000:20499' };
const EXTENDED_KEY = 'allow 20000:20499/udp from 10.0.0.1 port 49152:49951 to 10.0.0.2 on wg0';

t.test('parseUserRules reads dst, source port and interface; old-style keys are unchanged', async (t) => {
  t.same(parseUserRules(USER_RULES), [
    { key: 'allow 22/tcp from any', set: 'node-base' },
    { key: 'allow any/any from 10.0.0.0/24', set: 'node-base' },
    { key: EXTENDED_KEY, set: 'sfu-mesh' },
    { key: 'allow 4001,4002,5000:5010/tcp from 10.0.0.0/24', set: undefined },
    { key: 'allow any/any from any on wg0', set: undefined },
  ], 'application-profile, outgoing and route rules are not incoming port rules: skipped');
});

t.test('a desired rule and its parsed tuple have the same key', async (t) => {
  t.equal(ruleKey({ port: 22, proto: 'tcp' }), 'allow 22/tcp from any');
  t.equal(ruleKey({ from: '10.0.0.0/24' }), 'allow any/any from 10.0.0.0/24');
  t.equal(ruleKey({ port: '49152-49951', proto: 'udp' }), 'allow 49152:49951/udp from any');
  t.equal(ruleKey(EXTENDED), EXTENDED_KEY);
  t.equal(ruleKey({ port: '5000-5010,4002,4001', proto: 'tcp', from: '10.0.0.0/24' }), 'allow 4001,4002,5000:5010/tcp from 10.0.0.0/24', 'lists in ufw’s stored (sorted) order');
  t.equal(ruleKey({ interface: 'wg0' }), 'allow any/any from any on wg0');
  t.equal(ruleKey({ port: 22, proto: 'tcp', to: 'any', from: '0.0.0.0/0' }), 'allow 22/tcp from any', 'explicit any is any');
  t.equal(ruleKey({ from: '10.0.0.7/24', to: '10.0.0.2/32' }), 'allow any/any from 10.0.0.0/24 to 10.0.0.2', 'IPv4 addresses as ufw stores them');
});

t.test('keys round-trip to the words the rule was added with', async (t) => {
  t.equal(keyToSpec('allow 22/tcp from any'), 'allow proto tcp from any to any port 22');
  t.equal(keyToSpec('allow any/any from 10.0.0.0/24'), 'allow from 10.0.0.0/24 to any');
  t.equal(keyToSpec(EXTENDED_KEY), 'allow in on wg0 proto udp from 10.0.0.1 port 49152:49951 to 10.0.0.2 port 20000:20499');
  t.equal(keyToSpec('allow any/any from any on wg0'), 'allow in on wg0 from any to any');
  const added = planUfw({ set: 'sfu-mesh', rules: [EXTENDED] }, { installed: true, enabled: true, defaultIncoming: 'deny', rules: [] });
  t.equal(added.steps[0].display, `ufw ${keyToSpec(EXTENDED_KEY)} comment orama:sfu-mesh`, 'add and delete use the same words');
  t.equal(added.steps[0].script, `flock -w 120 ${UFW_LOCK} ufw ${keyToSpec(EXTENDED_KEY)} comment orama:sfu-mesh`, 'every ufw command holds the per-node ufw lock (two runs on one node take turns)');
});

t.test('the user.rules of a converged host plans nothing; dropping the rule deletes exactly it', async (t) => {
  const facts = parseUfwFacts(`ENABLED=yes\nDEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\nLOADED=yes\n${USER_RULES}`);
  t.equal(facts.enabled, true);
  t.equal(facts.defaultIncoming, 'deny');
  t.same(planUfw({ set: 'sfu-mesh', rules: [EXTENDED] }, facts).steps, []);
  t.same(planUfw({ set: 'node-base', rules: [{ port: 22, proto: 'tcp' }, { from: '10.0.0.0/24' }] }, facts).steps, []);
  const removed = planUfw({ set: 'sfu-mesh', rules: [] }, facts);
  t.same(removed.steps.map((s) => s.display), ['ufw delete allow in on wg0 proto udp from 10.0.0.1 port 49152:49951 to 10.0.0.2 port 20000:20499']);
});
