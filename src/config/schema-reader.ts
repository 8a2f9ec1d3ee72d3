/**
 * Typed reads from a YamlNode for the ferry.yaml schema: each one refuses a
 * wrong type with FERRY_CONFIG_INVALID naming the line and the dotted name
 * of the value (`targets.prod.regions[1]`).
 */
import type { FerryError } from '../errors/index.js';
import { configInvalid, type YamlEntry, type YamlNode } from './yaml-tree.js';

/** A mapping whose keys were checked against the schema: only known keys are left. */
export class MapReader {
  readonly path: string;
  /** The dotted name of this mapping, '' at the top. */
  readonly name: string;
  /** The line naming this mapping (its key's line), for "missing key" errors. */
  readonly line: number;
  private readonly byKey: ReadonlyMap<string, YamlEntry>;

  constructor(
    path: string,
    node: YamlNode,
    name: string,
    line: number,
    allowed: readonly string[] | null,
  ) {
    if (node.kind !== 'map')
      throw configInvalid(path, node.line, `${name || 'the top level'} must be a mapping`);
    this.path = path;
    this.name = name;
    this.line = line;
    const byKey = new Map<string, YamlEntry>();
    for (const e of node.entries) {
      if (allowed !== null && !allowed.includes(e.key))
        throw configInvalid(
          path,
          e.keyLine,
          `unknown key "${e.key}"${name === '' ? '' : ` in ${name}`} (known: ${allowed.join(', ')})`,
        );
      byKey.set(e.key, e);
    }
    this.byKey = byKey;
  }

  /** The dotted name of `key` in this mapping. */
  nameOf(key: string): string {
    return this.name === '' ? key : `${this.name}.${key}`;
  }

  entries(): YamlEntry[] {
    return [...this.byKey.values()];
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  get(key: string): YamlEntry | undefined {
    return this.byKey.get(key);
  }

  fail(line: number, reason: string): FerryError {
    return configInvalid(this.path, line, reason);
  }

  required(key: string): YamlEntry {
    const e = this.byKey.get(key);
    if (e === undefined) throw this.fail(this.line, `${this.name || 'the file'} needs "${key}"`);
    return e;
  }

  map(key: string, allowed: readonly string[] | null): MapReader | undefined {
    const e = this.byKey.get(key);
    return e === undefined
      ? undefined
      : new MapReader(this.path, e.value, this.nameOf(key), e.keyLine, allowed);
  }

  string(key: string, what = 'a non-empty string'): string | undefined {
    const e = this.byKey.get(key);
    return e === undefined ? undefined : scalarString(this.path, e.value, this.nameOf(key), what);
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const e = this.byKey.get(key);
    if (e === undefined) return undefined;
    const v = e.value;
    if (
      v.kind !== 'scalar' ||
      typeof v.value !== 'string' ||
      !(allowed as readonly string[]).includes(v.value)
    )
      throw this.fail(v.line, `${this.nameOf(key)} must be one of ${allowed.join(', ')}`);
    return v.value as T;
  }

  integer(key: string, min: number, max: number): number | undefined {
    const e = this.byKey.get(key);
    if (e === undefined) return undefined;
    const v = e.value;
    if (
      v.kind !== 'scalar' ||
      typeof v.value !== 'number' ||
      !Number.isInteger(v.value) ||
      v.value < min ||
      v.value > max
    )
      throw this.fail(v.line, `${this.nameOf(key)} must be a whole number from ${min} to ${max}`);
    return v.value;
  }

  /** A list of at most `max` items, each read by `item` (with its dotted name and node). */
  list<T>(key: string, max: number, item: (node: YamlNode, name: string) => T): T[] | undefined {
    const e = this.byKey.get(key);
    if (e === undefined) return undefined;
    const v = e.value;
    if (v.kind !== 'seq') throw this.fail(v.line, `${this.nameOf(key)} must be a list`);
    if (v.items.length > max)
      throw this.fail(v.line, `${this.nameOf(key)} has more than ${max} items`);
    return v.items.map((n, i) => item(n, `${this.nameOf(key)}[${i}]`));
  }
}

/** A scalar string, not empty. */
export function scalarString(
  path: string,
  node: YamlNode,
  name: string,
  what = 'a non-empty string',
): string {
  if (node.kind !== 'scalar' || typeof node.value !== 'string' || node.value === '')
    throw configInvalid(path, node.line, `${name} must be ${what}`);
  return node.value;
}
