import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

/** A region of a test disk: pseudo-random data, explicit zeros, or nothing written (a hole). */
export interface Region {
  readonly offset: number;
  readonly length: number;
  readonly fill: 'random' | 'zero' | number;
}

/** Deterministic pseudo-random bytes from a seed (SHA-512 in counter mode). */
export function pseudoRandom(length: number, seed: string): Buffer {
  const out = Buffer.alloc(length);
  for (let off = 0, i = 0; off < length; off += 64, i++) {
    createHash('sha512').update(`${seed}:${i}`).digest().copy(out, off);
  }
  return out;
}

/**
 * Writes a sparse raw disk of `size` bytes with the given regions. Holes are
 * never written, so the file stays sparse.
 */
export async function writeRawDisk(
  path: string,
  size: number,
  regions: readonly Region[],
  seed = 'ferry',
): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.truncate(size);
    for (const r of regions) {
      const buf =
        r.fill === 'random'
          ? pseudoRandom(r.length, `${seed}:${r.offset}`)
          : Buffer.alloc(r.length, r.fill === 'zero' ? 0 : r.fill);
      await fh.write(buf, 0, buf.length, r.offset);
    }
  } finally {
    await fh.close();
  }
}

/**
 * The standard mixed test disk: data at the start, holes, explicit zero runs,
 * a data run crossing cluster and block boundaries, and a size that is not a
 * multiple of 64 KiB, 1 MiB or 2 MiB.
 */
export const MIXED_SIZE = 9 * 1024 * 1024 + 3 * 512;
export const MIXED_REGIONS: readonly Region[] = [
  { offset: 0, length: 70 * 1024, fill: 'random' },
  { offset: 256 * 1024, length: 128 * 1024, fill: 'zero' },
  { offset: 1024 * 1024 - 4096, length: 3 * 1024 * 1024 + 8192, fill: 'random' },
  { offset: 5 * 1024 * 1024, length: 512 * 1024, fill: 0x11 },
  { offset: 6 * 1024 * 1024, length: 1024 * 1024, fill: 'zero' },
  { offset: MIXED_SIZE - 1536, length: 1536, fill: 'random' },
];
