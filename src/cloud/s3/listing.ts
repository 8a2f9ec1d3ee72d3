/**
 * The walk behind ListObjects(V2) and ListMultipartUploads: sorted names,
 * a prefix, an optional delimiter that folds names into common prefixes, a
 * starting position, and a page size. The rest of the names under a common
 * prefix are skipped as a block; a page is truncated only when another entry
 * really follows.
 */
import { compareKeys, lowerBound } from './key-order.js';

export type ListEntry =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'prefix'; readonly prefix: string };

export interface ListPage {
  readonly entries: ListEntry[];
  readonly truncated: boolean;
}

export interface ListInput {
  readonly prefix: string;
  readonly delimiter: string;
  /** Start strictly after this name (or, when `afterIsPrefix`, after every name under it). */
  readonly after: string | undefined;
  readonly afterIsPrefix?: boolean;
  readonly max: number;
}

export function walk(sorted: readonly string[], input: ListInput): ListPage {
  const { prefix, delimiter, after, max } = input;
  let i = lowerBound(sorted, prefix);
  if (after !== undefined && compareKeys(after, prefix) >= 0)
    i = Math.max(i, lowerBound(sorted, after, true));
  const entries: ListEntry[] = [];
  let lastPrefix = input.afterIsPrefix === true ? after : undefined;
  for (; i < sorted.length; i++) {
    const key = sorted[i]!;
    if (!key.startsWith(prefix)) break;
    if (lastPrefix !== undefined && key.startsWith(lastPrefix)) continue;
    let entry: ListEntry = { kind: 'key', key };
    if (delimiter !== '') {
      const at = key.indexOf(delimiter, prefix.length);
      if (at >= 0) {
        const common = key.slice(0, at + delimiter.length);
        entry = { kind: 'prefix', prefix: common };
        lastPrefix = common;
      }
    }
    if (entries.length === max) return { entries, truncated: true };
    entries.push(entry);
  }
  return { entries, truncated: false };
}

/**
 * Is `marker` (from a V1 marker or a key-marker) a common prefix this
 * listing returned, rather than a key? Only then are the names under it
 * skipped when resuming: the delimiter's first occurrence past the prefix
 * is the marker's end.
 */
export function isCommonPrefix(marker: string, prefix: string, delimiter: string): boolean {
  if (delimiter === '' || !marker.startsWith(prefix) || !marker.endsWith(delimiter)) return false;
  const at = marker.indexOf(delimiter, prefix.length);
  return at >= 0 && at + delimiter.length === marker.length;
}
