// The approval prompt: at a terminal (a real pty from script(1)), `apply` shows the plan and
// changes nothing unless the answer is "yes"; --yes skips the question; without a terminal (every
// script, test and bin/demo) there is no question at all.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { provision, root } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

/** Runs the CLI on a pseudo-terminal, typing `input`. */
const atTerminal = (args: string[], input: string) =>
  new Promise<{ code: number; out: string }>((resolve) => {
    const cmd = ['node', join(root, 'bin', 'orama-provision.js'), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = execFile('script', ['-qec', cmd, '/dev/null'], { cwd: root, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }),
    );
    // Typed once the question is there (a pty discards what arrives before the program reads).
    let typed = false;
    child.stdout!.on('data', (d: Buffer) => {
      if (!typed && d.toString().includes('Enter a value:')) {
        typed = true;
        child.stdin!.write(input);
      }
    });
  });

t.test('apply asks before it changes anything, at a terminal only', async (t) => {
  const d = tempDir(t, 'approve-');
  writeFileSync(join(d, 'inv.yml'), 'all:\n  hosts:\n    localhost: { connection: local }\n');
  const target = join(d, 'made-by-apply');
  writeFileSync(join(d, 'p.yml'), `- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: { dest: ${target}, content: "x\\n" }\n`);
  const args = ['apply', join(d, 'p.yml'), '-i', join(d, 'inv.yml')];

  const no = await atTerminal(args, 'no\n');
  t.equal(no.code, 1, 'a "no" fails the command');
  t.match(no.out, /\+ file .*made-by-apply/, 'the plan was shown first');
  t.match(no.out, /Do you want to perform these actions on 1 host\(s\)\?[\s\S]*Only 'yes' will be accepted/);
  t.match(no.out, /Apply cancelled: nothing was changed/);
  t.notOk(existsSync(target), 'nothing was changed');

  const y = await atTerminal(args, 'y\n');
  t.equal(y.code, 1, '"y" is not "yes"');
  t.notOk(existsSync(target));

  const yes = await atTerminal(args, 'yes\n');
  t.equal(yes.code, 0, yes.out.slice(-1500));
  t.ok(existsSync(target), '"yes" applied the plan');

  const noop = await atTerminal(args, '');
  t.equal(noop.code, 0, 'nothing to change: no question');
  t.notMatch(noop.out, /Do you want/);

  writeFileSync(target, 'drift\n');
  const skipped = await atTerminal([...args, '--yes'], '');
  t.equal(skipped.code, 0, '--yes applies without asking');
  t.notMatch(skipped.out, /Do you want/);

  writeFileSync(target, 'drift again\n');
  const piped = await provision(args);
  t.equal(piped.code, 0, 'without a terminal: no question, applied');
  t.notMatch(piped.out, /Do you want/);
});
