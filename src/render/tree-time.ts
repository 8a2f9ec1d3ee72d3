import type { Manifest } from '../store/index.js';

/**
 * The newest mtime of a tree in nanoseconds (0 for a tree with none after
 * the epoch): every time a render writes (superblock, generated files, the
 * ESP) derives from it, never from the clock.
 */
export function newestMtime(m: Manifest): bigint {
  let max = 0n;
  for (const e of m.entries) {
    const t = BigInt(e.mtime);
    if (t > max) max = t;
  }
  return max;
}
