// Handler notifications survive failures: each notification is written to the host as soon as
// it is made and removed only after the handler ran, so a failed apply cannot lose a restart
// (ansible/ansible#10498). The next apply (or plan) of the play picks them up.
import type { Transport } from './transport/transport.ts';

export const PENDING_FILE = '/var/lib/orama-provision/pending-handlers.json';

export async function loadPending(t: Pick<Transport, 'exec'>, become: boolean): Promise<string[]> {
  const r = await t.exec(`cat ${PENDING_FILE} 2>/dev/null || true`, { become });
  try {
    const v = JSON.parse(r.stdout || '[]');
    return Array.isArray(v) ? v.map(String) : [];
  } catch {
    return [];
  }
}

export async function savePending(t: Pick<Transport, 'exec'>, become: boolean, names: string[]): Promise<void> {
  const script = names.length
    ? `mkdir -p ${PENDING_FILE.replace(/\/[^/]+$/, '')} && cat > ${PENDING_FILE}.tmp && mv -f ${PENDING_FILE}.tmp ${PENDING_FILE}`
    : `rm -f ${PENDING_FILE}`;
  const r = await t.exec(script, { stdin: JSON.stringify([...new Set(names)].sort()), become });
  if (r.code !== 0) throw new Error(`cannot record pending handlers in ${PENDING_FILE}: ${r.stderr.trim()}`);
}
