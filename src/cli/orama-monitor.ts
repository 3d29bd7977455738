// `orama monitor report [--env E] [--namespace NS] [--json]`: what real probes on the nodes say
// (src/namespace/monitor.ts). Exit 0 when everything is healthy, 1 otherwise.
import { ProvisionError } from '../provision/errors.ts';
import { formatMonitor, monitorReport } from '../namespace/monitor.ts';
import { reportCommand } from './report-command.ts';

export async function monitorCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'report') {
    process.stderr.write(`orama: ${new ProvisionError(`orama monitor: unknown verb "${verb ?? ''}" (report)`).describe()}\n`);
    return 1;
  }
  return reportCommand(rest, (i) => monitorReport({ ...i, inventory: i.env.inventory, state: i.env.state }), formatMonitor, (r) => r.healthy);
}
