// The approval prompt before a command changes anything (Terraform's, and pyinfra 3's): shown only
// when a person is there — stdin and stdout both terminals — and skipped with --yes. Scripts,
// tests and bin/demo (pipes, not terminals) never wait on it.
import { createInterface } from 'node:readline/promises';

export const interactive = () => Boolean(process.stdin.isTTY && process.stdout.isTTY);

/** Asks; only "yes" approves (as Terraform: "y" is not an answer to a question that changes hosts). */
export async function approve(what: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(`\nDo you want to perform these actions${what ? ` ${what}` : ''}?\n  Only 'yes' will be accepted to approve (--yes skips this question).\n\n  Enter a value: `);
    return answer.trim() === 'yes';
  } finally {
    rl.close();
  }
}
