// Shared write path of template/copy/file: facts about one path, and Ansible's safe write
// (checksum compare → temp file in the destination directory → validate → backup → mode/owner
// → atomic rename) as ONE shell step fed the content on stdin.
import { createHash } from 'node:crypto';
import { dirname, basename } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { shellQuote } from '../transport/transport.ts';
import type { ModuleContext, Step } from './module.ts';

export const DIFF_CAP_BYTES = 256 * 1024;

export interface PathFacts {
  exists: boolean;
  type?: 'file' | 'directory' | 'link' | 'other';
  mode?: string; // octal, 4 digits
  owner?: string;
  group?: string;
  size?: number;
  sha256?: string;
  linkTarget?: string;
  /** Text content for the diff (absent when binary or larger than the cap). */
  content?: string;
  binary?: boolean;
}

/** As few processes as possible: this runs for every file task of every host on each apply. */
export function pathFactsScript(path: string, withContent: boolean): string {
  const p = shellQuote(path);
  return [
    `if [ -L ${p} ]; then echo "link|$(readlink ${p})"; exit 0; fi`,
    `if [ ! -e ${p} ]; then echo absent; exit 0; fi`,
    `i=$(stat -c '%F|%a|%U|%G|%s' ${p}); echo "$i"`,
    `if [ -f ${p} ]; then sha256sum < ${p};`,
    withContent ? `  if [ "\${i##*|}" -le ${DIFF_CAP_BYTES} ]; then base64 -w0 < ${p}; fi; echo; fi` : `  echo; fi`,
  ].join('\n');
}

export function parsePathFacts(out: string): PathFacts {
  const [head, shaLine, b64] = out.split('\n');
  const sha = shaLine?.split(' ')[0];
  if (head === 'absent') return { exists: false };
  if (head.startsWith('link|')) return { exists: true, type: 'link', linkTarget: head.slice(5) };
  const [ftype, mode, owner, group, size] = head.split('|');
  const type = ftype.startsWith('regular') ? 'file' : ftype === 'directory' ? 'directory' : 'other';
  const f: PathFacts = { exists: true, type, mode: mode.padStart(4, '0'), owner, group, size: Number(size) };
  if (type === 'file') {
    f.sha256 = sha;
    if (b64 !== undefined && b64 !== '') {
      const buf = Buffer.from(b64, 'base64');
      if (isBinary(buf)) f.binary = true;
      else f.content = buf.toString('utf8');
    } else if (Number(size) === 0) f.content = '';
    else if (Number(size) > DIFF_CAP_BYTES) f.binary = false;
  }
  return f;
}

export async function gatherPath(ctx: ModuleContext, path: string, withContent = true): Promise<PathFacts> {
  const r = await ctx.exec(pathFactsScript(path, withContent));
  if (r.code !== 0) throw new Error(`cannot inspect ${path}: ${r.stderr.trim()}`);
  return parsePathFacts(r.stdout);
}

/**
 * Facts for a file about to hold `bytes` (copy, template): its old content, for the plan's diff,
 * is fetched only when the checksums differ, so an unchanged file costs one small look.
 */
export async function gatherPathFor(ctx: ModuleContext, path: string, bytes: Buffer | undefined): Promise<PathFacts> {
  const f = await gatherPath(ctx, path, false);
  return f.type === 'file' && (!bytes || f.sha256 !== sha256(bytes)) ? gatherPath(ctx, path, true) : f;
}

export function isBinary(buf: Buffer): boolean {
  return buf.subarray(0, 8000).includes(0);
}

export function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export function normMode(mode: string | number | undefined): string | undefined {
  if (mode === undefined) return undefined;
  const s = typeof mode === 'number' ? mode.toString(8) : String(mode).replace(/^0o/, '');
  return s.padStart(4, '0');
}

/** A unified diff for the plan, or a sentence saying why there is none. */
export function fileDiff(path: string, before: PathFacts, after: string | Buffer): string {
  const afterBuf = Buffer.isBuffer(after) ? after : Buffer.from(after);
  if (before.binary || isBinary(afterBuf)) return `(binary content differs: ${before.size ?? 0} → ${afterBuf.length} bytes)`;
  if (before.exists && before.content === undefined) return `(not shown: file larger than ${DIFF_CAP_BYTES} bytes)`;
  if (afterBuf.length > DIFF_CAP_BYTES) return `(not shown: new content larger than ${DIFF_CAP_BYTES} bytes)`;
  return createTwoFilesPatch(before.exists ? path : '/dev/null', path, before.content ?? '', afterBuf.toString('utf8'), '', '', { context: 3 })
    .split('\n')
    .slice(1) // drop the "=====" header line, keep ---/+++
    .join('\n')
    .trimEnd();
}

export interface WriteOptions {
  path: string;
  content: string | Buffer;
  mode?: string;
  owner?: string;
  group?: string;
  validate?: string;
  backup?: boolean;
  existed: boolean;
}

export function writeStep(o: WriteOptions): Step {
  const p = shellQuote(o.path);
  const dir = shellQuote(dirname(o.path));
  const lines = [
    'set -e',
    `mkdir -p ${dir}`,
    `t=$(mktemp ${shellQuote(dirname(o.path) + '/.' + basename(o.path) + '.orama-XXXXXX')})`,
    `trap 'rm -f "$t"' EXIT`,
    'cat > "$t"',
  ];
  if (o.validate) lines.push(o.validate.replace(/%s/g, '"$t"') + ` || { echo "validation failed: ${o.validate.replace(/"/g, '\\"')}" >&2; exit 3; }`);
  if (o.backup && o.existed) lines.push(`cp -p ${p} ${p}.$(date +%Y%m%d%H%M%S).bak`);
  lines.push(`chmod ${o.mode ?? (o.existed ? `--reference=${p}` : '0644')} "$t"`);
  if (o.owner || o.group) lines.push(`chown ${shellQuote(`${o.owner ?? ''}${o.group ? ':' + o.group : ''}`)} "$t"`);
  else if (o.existed) lines.push(`chown --reference=${p} "$t"`);
  lines.push(`mv -f "$t" ${p}`, 'trap - EXIT');
  const size = Buffer.byteLength(o.content);
  return { script: lines.join('\n'), stdin: o.content, display: `write ${o.path} (${size} bytes${o.mode ? `, mode ${o.mode}` : ''}) via temp file + rename${o.validate ? `, validated by \`${o.validate}\`` : ''}` };
}

/** The mode/owner/group part shared by file and content modules. */
export function attributeChanges(path: string, f: PathFacts, want: { mode?: string; owner?: string; group?: string }): { detail: string[]; script: string[]; same: number } {
  const detail: string[] = [];
  const script: string[] = [];
  const same = [want.mode && f.mode === want.mode, want.owner && f.owner === want.owner, want.group && f.group === want.group].filter(Boolean).length;
  const p = shellQuote(path);
  if (want.mode && f.mode !== want.mode) {
    detail.push(`mode ${f.mode ?? '-'} → ${want.mode}`);
    script.push(`chmod ${want.mode} ${p}`);
  }
  if (want.owner && f.owner !== want.owner) {
    detail.push(`owner ${f.owner ?? '-'} → ${want.owner}`);
    script.push(`chown ${shellQuote(want.owner)} ${p}`);
  }
  if (want.group && f.group !== want.group) {
    detail.push(`group ${f.group ?? '-'} → ${want.group}`);
    script.push(`chgrp ${shellQuote(want.group)} ${p}`);
  }
  return { detail, script, same };
}
