/**
 * MaxResults/NextToken paging for the Describe actions. A token names the
 * last key of the page it ends and a digest of the request it belongs to,
 * so the next page starts after that key (items added or removed meanwhile
 * do not shift it), and a token is refused by any other request.
 */
import { createHash } from 'node:crypto';
import { badNextToken, invalidCombination } from './errors.js';
import type { QueryReader } from './query-reader.js';

export interface Page<T> {
  readonly items: T[];
  readonly nextToken?: string;
}

export interface PagingRule {
  readonly min: number;
  readonly max: number;
  /** Parameters that may not come with MaxResults (AWS refuses SnapshotId with it). */
  readonly exclusive?: readonly string[];
}

/** The digest of every parameter but the paging ones, so a token fits its own query only. */
function scope(q: QueryReader): string {
  const rows = [...q.params]
    .filter(([k]) => k !== 'NextToken' && k !== 'MaxResults')
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  return createHash('sha256').update(rows.join('\n')).digest('base64url').slice(0, 16);
}

/** `sorted` (ascending by `key`) cut to the page the request asks for. */
export function paginate<T>(
  q: QueryReader,
  sorted: readonly T[],
  key: (item: T) => string,
  rule: PagingRule,
): Page<T> {
  const max = q.integer('MaxResults', -(2 ** 31), 2 ** 31);
  const token = q.string('NextToken', { max: 1024 });
  if (max !== undefined) {
    for (const p of rule.exclusive ?? []) {
      if ([...q.params.keys()].some((k) => k.startsWith(`${p}.`)))
        throw invalidCombination(`The parameter ${p} cannot be used with the parameter maxResults`);
    }
    if (max < rule.min || max > rule.max)
      throw invalidCombination(
        `Value ( ${max} ) for parameter maxResults is invalid. Expecting a value from ${rule.min} to ${rule.max}.`,
      );
  }
  const s = scope(q);
  let start = 0;
  if (token !== undefined && token !== '') {
    const after = readToken(token, s);
    start = lowerBoundAfter(sorted, key, after);
  }
  const size = max ?? (token === undefined ? Number.POSITIVE_INFINITY : rule.max);
  const items = sorted.slice(start, start + size);
  const more = start + items.length < sorted.length;
  const last = items[items.length - 1];
  return more && last !== undefined ? { items, nextToken: makeToken(s, key(last)) } : { items };
}

function makeToken(scopeDigest: string, after: string): string {
  return Buffer.from(JSON.stringify({ s: scopeDigest, a: after })).toString('base64url');
}

function readToken(token: string, scopeDigest: string): string {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (typeof t === 'object' && t !== null) {
      const { s, a } = t as { s?: unknown; a?: unknown };
      if (s === scopeDigest && typeof a === 'string') return a;
    }
  } catch {
    // not JSON: refused below
  }
  throw badNextToken(token);
}

/** The index of the first item whose key is greater than `after`. */
function lowerBoundAfter<T>(sorted: readonly T[], key: (item: T) => string, after: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(sorted[mid]!) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
