// `orama` — the operator's wrapper (namespace enable/disable webrtc, status, tokens).
export async function main(argv: string[]): Promise<number> {
  process.stderr.write(`orama: not implemented yet: ${argv.join(' ')}\n`);
  return 1;
}
