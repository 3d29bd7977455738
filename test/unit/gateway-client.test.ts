// GET /v1/webrtc/client/<file>: the browser client and demo page, public, with a CSP that allows
// exactly the page's own inline script and style (by hash) and the gateway's own origin.
import t from 'tap';
import { createHash } from 'node:crypto';
import { gatewayFixture } from '../helpers/gateway-fixture.ts';

t.test('client files', async (t) => {
  const { app } = await gatewayFixture(t);
  const page = await app.inject({ method: 'GET', url: '/v1/webrtc/client/demo.html' });
  t.equal(page.statusCode, 200, 'served without credentials: the page asks for a token itself');
  t.match(page.headers['content-type'], /text\/html/);
  t.equal(page.headers['permissions-policy'], 'camera=(self), microphone=(self)');
  const csp = String(page.headers['content-security-policy']);
  const script = /<script type="module">([\s\S]*?)<\/script>/.exec(page.body)![1];
  t.match(csp, `'sha256-${createHash('sha256').update(script).digest('base64')}'`, 'the inline module script is allowed by its hash');
  t.notMatch(csp, 'unsafe-inline', 'and nothing else inline');
  t.match(csp, "connect-src 'self'", 'signaling only to the gateway itself');
  const js = await app.inject({ method: 'GET', url: '/v1/webrtc/client/orama-webrtc.js' });
  t.equal(js.statusCode, 200);
  t.match(js.headers['content-type'], /javascript/);
  t.match(js.body, 'iceTransportPolicy', 'the client module forces relay');
  t.equal((await app.inject({ method: 'GET', url: '/v1/webrtc/client/nope.js' })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: '/v1/webrtc/client/..%2Fconfig.ts' })).statusCode, 400, 'no path tricks');
});
