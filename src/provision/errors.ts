// Every error the engine raises says where: file:line:col, the key, the host, the task.
export interface Place {
  file?: string;
  line?: number;
  col?: number;
}

export function formatPlace(p?: Place): string {
  if (!p?.file) return '';
  return p.line ? `${p.file}:${p.line}:${p.col ?? 1}` : p.file;
}

export class ProvisionError extends Error {
  constructor(message: string, public place?: Place, public details: { key?: string; host?: string; task?: string } = {}) {
    super(message);
    this.name = 'ProvisionError';
  }
  /** One line an operator can act on: place, host, task, then the message. */
  describe(): string {
    const parts: string[] = [];
    const where = formatPlace(this.place);
    if (where) parts.push(where);
    if (this.details.host) parts.push(`host ${this.details.host}`);
    if (this.details.task) parts.push(`task "${this.details.task}"`);
    if (this.details.key) parts.push(`key "${this.details.key}"`);
    return parts.length ? `${parts.join(', ')}: ${this.message}` : this.message;
  }
}
