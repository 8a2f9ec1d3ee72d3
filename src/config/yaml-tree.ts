/**
 * ferry.yaml as a small tree of mappings, lists and scalars that remembers
 * the line of every node and key, so a schema check can say where a value
 * is wrong. Aliases are resolved (at most MAX_ALIASES of them); tags other
 * than the core schema's are refused by the YAML parser itself.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { FerryError } from '../errors/index.js';

export type YamlScalar = string | number | boolean | null;

export interface YamlEntry {
  readonly key: string;
  readonly keyLine: number;
  readonly value: YamlNode;
}

export type YamlNode =
  | { readonly kind: 'map'; readonly line: number; readonly entries: readonly YamlEntry[] }
  | { readonly kind: 'seq'; readonly line: number; readonly items: readonly YamlNode[] }
  | { readonly kind: 'scalar'; readonly line: number; readonly value: YamlScalar };

/** Aliases followed in one file; more is an alias bomb, not a config. */
const MAX_ALIASES = 100;
/** Nesting deeper than this is not a ferry.yaml. */
const MAX_DEPTH = 32;

/** The one error of config reading: "Cannot read PATH:LINE: reason". */
export function configInvalid(path: string, line: number | null, reason: string): FerryError {
  return new FerryError(
    'FERRY_CONFIG_INVALID',
    `Cannot read ${path}${line === null ? '' : `:${line}`}: ${reason}`,
    { details: { path, line } },
  );
}

/** Parses `text` into a tree; null for an empty document. YAML errors name their line. */
export function parseYamlTree(text: string, path: string): YamlNode | null {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const lineOf = (offset: number | undefined): number =>
    offset === undefined ? 1 : lines.linePos(offset).line;
  const first = doc.errors[0];
  if (first !== undefined)
    throw configInvalid(path, lineOf(first.pos[0]), first.message.split('\n')[0] ?? 'bad YAML');
  let aliases = 0;
  const build = (node: unknown, depth: number, fallbackLine: number): YamlNode => {
    let n = node;
    if (isAlias(n)) {
      aliases += 1;
      if (aliases > MAX_ALIASES)
        throw configInvalid(path, lineOf(n.range?.[0]), `more than ${MAX_ALIASES} aliases`);
      n = n.resolve(doc);
      if (n === undefined) throw configInvalid(path, null, 'an alias names no anchor');
    }
    if (depth > MAX_DEPTH)
      throw configInvalid(path, lineOf((n as Node).range?.[0]), 'nested too deeply');
    const start = (n as Node | null)?.range?.[0];
    const line = start === undefined ? fallbackLine : lineOf(start);
    if (isMap(n)) {
      const entries: YamlEntry[] = [];
      for (const pair of n.items) {
        const k = pair.key;
        const keyLine = lineOf((k as Node | null)?.range?.[0]);
        if (!isScalar(k) || (typeof k.value !== 'string' && typeof k.value !== 'number'))
          throw configInvalid(path, keyLine, 'a key must be a plain string');
        entries.push({
          key: String(k.value),
          keyLine,
          value: build(pair.value, depth + 1, keyLine),
        });
      }
      return { kind: 'map', line, entries };
    }
    if (isSeq(n))
      return { kind: 'seq', line, items: n.items.map((i) => build(i, depth + 1, line)) };
    if (n === null || n === undefined) return { kind: 'scalar', line, value: null };
    if (isScalar(n)) {
      const v = n.value;
      if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number')
        return { kind: 'scalar', line, value: v };
      throw configInvalid(path, line, 'a value of an unsupported YAML type');
    }
    throw configInvalid(path, line, 'a value of an unsupported YAML type');
  };
  if (doc.contents === null) return null;
  return build(doc.contents, 0, 1);
}
