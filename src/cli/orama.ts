// `orama` — the operator's wrapper. Each noun lives in its own file under src/cli/.
export async function main(argv: string[]): Promise<number> {
  const [noun, ...rest] = argv;
  switch (noun) {
    case 'namespace': return (await import('./orama-namespace.ts')).namespaceCommand(rest);
    case 'monitor': return (await import('./orama-monitor.ts')).monitorCommand(rest);
    case 'inspector': return (await import('./orama-inspector.ts')).inspectorCommand(rest);
    case 'token':
    case 'apikey': return (await import('./orama-auth.ts')).authCommand(noun, rest);
    case undefined: case '-h': case '--help':
      process.stdout.write(USAGE); return noun ? 0 : 1;
    default:
      process.stderr.write(`orama: unknown command "${noun}"\n${USAGE}`); return 1;
  }
}

const USAGE = `usage (every command takes --env NAME: inventory/environments/NAME.yml, default local):
  orama namespace enable webrtc  --namespace NAME [--plan] [--yes] [-i INVENTORY] [--state PATH|URL]
  orama namespace disable webrtc --namespace NAME [--plan] [--yes] [--force]   --force: also when the operator store does not know it
      (at a terminal, the plan is shown and only "yes" goes on; --yes skips the question)
  orama namespace webrtc-status  --namespace NAME [--json]
  orama monitor report [--env E] [--namespace NAME] [--json]   (probes on the nodes; exit 1 unless healthy)
  orama inspector      [--env E] [--namespace NAME] [--json]   (cross-node checks with fixes; exit 1 on an error)
  orama token mint    --namespace NAME --subject SUB [--owner] [--ttl SECONDS]
  orama apikey create --namespace NAME --subject SUB [--owner]
  orama apikey revoke --namespace NAME --id KEY_ID
  orama apikey sync   --namespace NAME      (API keys → the cluster's database; create/revoke do it too)
  orama apikey list   --namespace NAME
`;
