// wait_for: a TCP port open/closed, or a file present/absent, polled on the host until a timeout.
// It changes nothing, so a plan only says what apply will wait for.
import { shellQuote } from '../transport/transport.ts';
import { defineModule, type Planned } from './module.ts';

interface WaitArgs {
  port?: number;
  host?: string;
  path?: string;
  state?: 'started' | 'stopped' | 'present' | 'absent';
  timeout?: number;
  delay?: number;
}

export function planWaitFor(a: WaitArgs): Planned {
  const timeout = a.timeout ?? 60;
  const state = a.state ?? (a.path ? 'present' : 'started');
  const up = state === 'started' || state === 'present';
  const probe = a.path
    ? `[ -e ${shellQuote(a.path)} ]`
    // ss lists listeners locally; for another host, bash's /dev/tcp is the portable probe.
    : a.host && !['127.0.0.1', 'localhost'].includes(a.host)
      ? `timeout 2 bash -c ${shellQuote(`exec 3<>/dev/tcp/${a.host}/${a.port}`)} 2>/dev/null`
      : `ss -Hltn 'sport = :${a.port}' | grep -q .`;
  const what = a.path ? `path ${a.path} ${up ? 'present' : 'absent'}` : `port ${a.host ?? '127.0.0.1'}:${a.port} ${up ? 'open' : 'closed'}`;
  const cond = up ? probe : `! { ${probe}; }`;
  const script = `sleep ${a.delay ?? 0}; end=$(( $(date +%s) + ${timeout} )); until ${cond}; do [ $(date +%s) -ge $end ] && { echo "timed out after ${timeout}s waiting for ${what}" >&2; exit 1; }; sleep 0.2; done`;
  return { changes: [], steps: [{ script, display: `wait for ${what} (timeout ${timeout}s)`, readOnly: true }], result: { waited_for: what } };
}

export default defineModule<WaitArgs, {}>({
  name: 'wait_for',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      host: { type: 'string' },
      path: { type: 'string' },
      state: { enum: ['started', 'stopped', 'present', 'absent'] },
      timeout: { type: 'integer', minimum: 0 },
      delay: { type: 'integer', minimum: 0 },
    },
    oneOf: [{ required: ['port'] }, { required: ['path'] }],
  },
  facts: async () => ({}),
  plan: planWaitFor,
});
