// `orama inspector [--env E] [--namespace NS] [--json]`: cross-node checks with a severity and a
// fix each (src/namespace/inspector.ts). Exit 1 on any error finding.
import { formatInspector, inspect } from '../namespace/inspector.ts';
import { reportCommand } from './report-command.ts';

export const inspectorCommand = (argv: string[]): Promise<number> =>
  reportCommand(argv, (i) => inspect({ ...i, inventory: i.env.inventory }), formatInspector, (r) => r.ok);
