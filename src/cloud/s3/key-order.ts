/**
 * S3 lists keys in the byte order of their UTF-8 encoding, which is code
 * point order. JavaScript compares UTF-16 code units, which disagrees for
 * characters above U+FFFF (surrogates, 0xD800–0xDFFF) against U+E000–U+FFFF;
 * remapping those two ranges restores code point order without encoding.
 */
function unit(c: number): number {
  if (c < 0xd800) return c;
  return c >= 0xe000 ? c - 0x800 : c + 0x2000;
}

export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unit(x) - unit(y);
  }
  return a.length - b.length;
}

/** The first index of `sorted` whose key is >= `key` (or > `key` when `after`). */
export function lowerBound(sorted: readonly string[], key: string, after = false): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeys(sorted[mid]!, key);
    if (c < 0 || (after && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts `key` into `sorted` (kept sorted) unless present. */
export function insertKey(sorted: string[], key: string): void {
  const i = lowerBound(sorted, key);
  if (sorted[i] !== key) sorted.splice(i, 0, key);
}

export function removeKey(sorted: string[], key: string): void {
  const i = lowerBound(sorted, key);
  if (sorted[i] === key) sorted.splice(i, 1);
}
