// Handler notifications survive failures: each notification is written to the host as soon as
// it is made and removed only after the handler ran, so a failed apply cannot lose a restart
// (ansible/ansible#10498). The next apply (or plan) of the same play picks them up.
// One file per play (its rendered name and playbook directory: `webrtc for namespace a` and `… b`
// are two plays), written through a temp file of its own: two runs on one host — two namespaces
// enabled at once — neither corrupt nor run each other's notifications.
import { createHash } from 'node:crypto';
import { shellQuote, type Transport } from './transport/transport.ts';

export const PENDING_DIR = '/var/lib/orama-provision/pending';

export function pendingFile(play: { name: string; dir: string }): string {
  const slug = play.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 48) || 'play';
  const hash = createHash('sha256').update(`${play.dir}\0${play.name}`).digest('hex').slice(0, 12);
  return `${PENDING_DIR}/${slug}-${hash}.json`;
}

export async function loadPending(t: Pick<Transport, 'exec'>, become: boolean, file: string): Promise<string[]> {
  const r = await t.exec(`cat ${shellQuote(file)} 2>/dev/null || true`, { become });
  try {
    const v = JSON.parse(r.stdout || '[]');
    return Array.isArray(v) ? v.map(String) : [];
  } catch {
    return [];
  }
}

export async function savePending(t: Pick<Transport, 'exec'>, become: boolean, file: string, names: string[]): Promise<void> {
  const f = shellQuote(file);
  const script = names.length
    ? `mkdir -p ${PENDING_DIR} && rm -f ${f}.?????? && tmp=$(mktemp ${f}.XXXXXX) && cat > "$tmp" && mv -f "$tmp" ${f}`
    // (a run killed between mktemp and mv leaves its temporary file: the next save of the play removes it)
    : `rm -f ${f} ${f}.??????`;
  const r = await t.exec(script, { stdin: JSON.stringify([...new Set(names)].sort()), become });
  if (r.code !== 0) throw new Error(`cannot record pending handlers in ${file}: ${r.stderr.trim()}`);
}
