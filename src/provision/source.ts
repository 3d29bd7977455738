// YAML loading that keeps source positions: every mapping, sequence and key loaded here can
// be traced back to file:line:col for error messages (Ansible's worst habit is errors without place).
import { readFileSync } from 'node:fs';
import YAML, { isMap, isScalar, isSeq, LineCounter, visit, type Document, type Node } from 'yaml';
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

/** YAML tags of every file the engine reads, and of `-e key=value` values. */
export const customTags = [
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

/**
 * The offset of the first key (in the text) that repeats an earlier key of its mapping, or
 * undefined. yaml's own check (`uniqueKeys: true`) compares each key with every earlier one of its
 * map, which is quadratic: a vars mapping of 95 000 keys took minutes. Here each map has a Set, so
 * it is linear. Keys are equal as yaml's check has them: the same node, or scalars of the same value.
 */
export function firstDuplicateKey(doc: Document.Parsed | Document): number | undefined {
  let first: number | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const id = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(id)) {
          const at = (pair.key as Node | null)?.range?.[0];
          if (at !== undefined && (first === undefined || at < first)) first = at;
          break;
        }
        seen.add(id);
      }
    },
  });
  return first;
}

export function parseYaml(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  // uniqueKeys: false, and firstDuplicateKey below instead (linear; same message, same place).
  const doc = YAML.parseDocument(text, { lineCounter, customTags, prettyErrors: false, uniqueKeys: false });
  const dup = firstDuplicateKey(doc);
  const parseError = doc.errors[0] && { message: doc.errors[0].message, offset: doc.errors[0].pos[0] };
  // yaml reports its errors in the order of the text: a duplicate key before its first error is the first.
  const e = dup !== undefined && !(parseError && parseError.offset <= dup) ? { message: 'Map keys must be unique', offset: dup } : parseError;
  if (e) {
    const pos = lineCounter.linePos(e.offset);
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
