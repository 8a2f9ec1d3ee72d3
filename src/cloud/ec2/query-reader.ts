/**
 * Typed, bounded access to EC2 query parameters: strings with length caps,
 * integers in ranges, enums, flattened lists (`Name.N`) and lists of
 * structures (`Name.N.Member`). Lists are capped so a hostile request
 * cannot make the endpoint hold more than a small, known amount.
 */
import { queryBoolean } from '../query-protocol.js';
import { invalidValue, missing } from './errors.js';

/** The most items any list parameter may have (AWS's own caps are lower for most). */
export const MAX_LIST = 1000;

export class QueryReader {
  readonly params: URLSearchParams;

  constructor(params: URLSearchParams) {
    this.params = params;
  }

  has(name: string): boolean {
    return this.params.has(name);
  }

  /** A string parameter; `max` characters at most. */
  string(name: string, options: { max?: number; required?: boolean } = {}): string | undefined {
    const v = this.params.get(name);
    if (v === null) {
      if (options.required === true) throw missing(name);
      return undefined;
    }
    const max = options.max ?? 4096;
    if (v.length > max)
      throw invalidValue(
        `Value for parameter ${name} is too long: ${v.length} characters, at most ${max}.`,
      );
    return v;
  }

  required(name: string, max?: number): string {
    const v = this.string(name, { required: true, ...(max === undefined ? {} : { max }) });
    if (v === undefined || v === '') throw missing(name);
    return v;
  }

  boolean(name: string): boolean | undefined {
    return this.params.has(name) ? queryBoolean(this.params, name) : undefined;
  }

  integer(name: string, min: number, max: number): number | undefined {
    const v = this.params.get(name);
    if (v === null) return undefined;
    const n = /^-?\d{1,15}$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw invalidValue(
        `Value (${v.slice(0, 32)}) for parameter ${name} is invalid. Expected an integer from ${min} to ${max}.`,
      );
    return n;
  }

  enumValue<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const v = this.params.get(name);
    if (v === null) return undefined;
    if (!(allowed as readonly string[]).includes(v))
      throw invalidValue(
        `Value (${v.slice(0, 64)}) for parameter ${name} is invalid. Expected one of: ${allowed.join(', ')}.`,
      );
    return v as T;
  }

  /** The indexes N of `prefix.N` or `prefix.N.…` keys, in order. */
  private indexes(prefix: string, nested: boolean): number[] {
    const found = new Set<number>();
    const p = `${prefix}.`;
    for (const k of this.params.keys()) {
      if (!k.startsWith(p)) continue;
      const rest = k.slice(p.length);
      const m = nested ? /^(\d{1,6})\./.exec(rest) : /^(\d{1,6})$/.exec(rest);
      if (m !== null) found.add(Number(m[1]));
      if (found.size > MAX_LIST)
        throw invalidValue(`The parameter ${prefix} has more than ${MAX_LIST} items.`);
    }
    return [...found].sort((a, b) => a - b);
  }

  /** A flattened list of strings: `prefix.1`, `prefix.2`, … */
  list(prefix: string, max = MAX_LIST, itemMax = 1024): string[] {
    const out = this.indexes(prefix, false).map((i) => this.params.get(`${prefix}.${i}`) ?? '');
    if (out.length > max) throw invalidValue(`The parameter ${prefix} has more than ${max} items.`);
    for (const v of out)
      if (v.length > itemMax)
        throw invalidValue(`An item of ${prefix} is longer than ${itemMax} characters.`);
    return out;
  }

  /** A list of structures: one reader per `prefix.N.` with the prefix taken off. */
  structs(prefix: string, max = MAX_LIST): QueryReader[] {
    const idx = this.indexes(prefix, true);
    if (idx.length > max) throw invalidValue(`The parameter ${prefix} has more than ${max} items.`);
    return idx.map((i) => this.sub(`${prefix}.${i}`));
  }

  /** The members of a structure parameter `prefix.Member`. */
  sub(prefix: string): QueryReader {
    const p = `${prefix}.`;
    const out = new URLSearchParams();
    for (const [k, v] of this.params) if (k.startsWith(p)) out.append(k.slice(p.length), v);
    return new QueryReader(out);
  }
}
