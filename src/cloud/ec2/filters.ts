/**
 * EC2 Filter.N evaluation: a resource matches when every filter matches, a
 * filter matches when any of its values matches any of the resource's
 * values for that name (`*` and `?` are wildcards), and `tag:KEY` and
 * `tag-key` look at the tags.
 */
import { queryFilters } from '../query-protocol.js';
import { badFilter, invalidValue } from './errors.js';
import type { QueryReader } from './query-reader.js';
import type { Tag } from './tags.js';

export interface Filter {
  readonly name: string;
  readonly values: readonly string[];
}

/** The request's filters, checked against the names the action knows. */
export function readFilters(q: QueryReader, known: readonly string[]): Filter[] {
  const filters = queryFilters(q.params);
  if (filters.length > 50) throw invalidValue('The request has more than 50 filters.');
  for (const f of filters) {
    if (!known.includes(f.name) && !f.name.startsWith('tag:')) throw badFilter(f.name);
    if (f.values.length > 200)
      throw invalidValue(`The filter '${f.name}' has more than 200 values.`);
    for (const v of f.values)
      if (v.length > 1024) throw invalidValue('A filter value is too long.');
  }
  return filters;
}

/**
 * Does a resource match? `values(name)` gives its values for a filter name
 * (undefined or empty: none, so the filter does not match).
 */
export function matchesAll(
  filters: readonly Filter[],
  values: (name: string) => readonly string[] | undefined,
  tags: readonly Tag[],
): boolean {
  return filters.every((f) => {
    let have: readonly string[];
    if (f.name.startsWith('tag:')) {
      const key = f.name.slice(4);
      have = tags.filter((t) => t.key === key).map((t) => t.value);
    } else if (f.name === 'tag-key') have = tags.map((t) => t.key);
    else if (f.name === 'tag-value') have = tags.map((t) => t.value);
    else have = values(f.name) ?? [];
    return have.some((v) => f.values.some((pattern) => wildcardMatch(pattern, v)));
  });
}

/**
 * `*` (any run) and `?` (one character) matching in O(pattern × text) with
 * no regular expression, so hostile patterns cannot make it backtrack.
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '?' || (c !== undefined && c !== '*' && c === text[t])) {
      p++;
      t++;
    } else if (c === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}
