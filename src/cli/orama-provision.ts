// `orama-provision` — entry point: dispatches verbs to the parts that own them.
export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'cluster': {
      const { clusterCommand } = await import('../cluster/command.ts');
      return clusterCommand(rest);
    }
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return verb ? 0 : 1;
    default:
      process.stderr.write(`orama-provision: unknown command "${verb}"\n${USAGE}`);
      return 1;
  }
}

const USAGE = `usage:
  orama-provision apply PLAYBOOK -i INVENTORY [options]
  orama-provision plan  PLAYBOOK -i INVENTORY [--out plan.json] [options]
  orama-provision apply plan.json
  orama-provision cluster up|down|status|ssh N|stop N|start N
`;
