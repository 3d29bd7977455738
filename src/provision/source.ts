// YAML loading that keeps source positions: every mapping, sequence and key loaded here can
// be traced back to file:line:col for error messages (Ansible's worst habit is errors without place).
import { readFileSync } from 'node:fs';
import YAML, { isMap, isScalar, isSeq, LineCounter, type Node } from 'yaml';
import { ProvisionError, type Place } from './errors.ts';
import { Secret } from './secret.ts';

interface Located {
  self: Place;
  keys: Map<string | number, Place>;
}

const places = new WeakMap<object, Located>();

/** Where an object (or one of its keys) was written. */
export function placeOf(obj: unknown, key?: string | number): Place | undefined {
  if (!obj || typeof obj !== 'object') return undefined;
  const loc = places.get(obj);
  if (!loc) return undefined;
  return (key !== undefined && loc.keys.get(key)) || loc.self;
}

/** Follows a JSON pointer (ajv's instancePath) to the deepest located node. */
export function placeOfPath(root: unknown, path: (string | number)[]): Place | undefined {
  let node: any = root;
  let best = placeOf(root);
  for (const seg of path) {
    const here = placeOf(node, seg);
    if (here) best = here;
    if (node == null || typeof node !== 'object') break;
    node = node[seg];
    const own = placeOf(node);
    if (own) best = own;
  }
  return best;
}

const customTags = [
  // `!secret value` marks a value sensitive; `!secret_file path` reads it from a file on the controller.
  { tag: '!secret', resolve: (s: string) => new Secret(s) },
  {
    tag: '!secret_file',
    resolve: (path: string, onError: (m: string) => void) => {
      try {
        return new Secret(readFileSync(path, 'utf8').trim());
      } catch (e) {
        onError(`cannot read secret file ${path}: ${(e as Error).message}`);
        return null;
      }
    },
  },
];

export function parseYaml(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, customTags, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
    throw new ProvisionError(`invalid YAML: ${e.message.split('\n')[0]}`, { file, line: pos?.line, col: pos?.col });
  }
  const at = (n: Node | null | undefined): Place => {
    const r = n?.range;
    if (!r) return { file };
    const p = lineCounter.linePos(r[0]);
    return { file, line: p.line, col: p.col };
  };
  const convert = (n: unknown): unknown => {
    if (isMap(n)) {
      const obj: Record<string, unknown> = {};
      const keys = new Map<string | number, Place>();
      for (const pair of n.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        keys.set(k, at(pair.key as Node));
        obj[k] = convert(pair.value);
      }
      places.set(obj, { self: at(n), keys });
      return obj;
    }
    if (isSeq(n)) {
      const arr: unknown[] = [];
      const keys = new Map<string | number, Place>();
      n.items.forEach((item, i) => {
        keys.set(i, at(item as Node));
        arr.push(convert(item));
      });
      places.set(arr, { self: at(n), keys });
      return arr;
    }
    if (isScalar(n)) return n.value;
    return n ?? null;
  };
  return convert(doc.contents);
}

export function loadYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ProvisionError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
  return parseYaml(text, file);
}
