import { createHash } from 'node:crypto';
import { BLOCK_SIZE } from './types.js';

/** Base64 SHA-256 of a 512 KiB block of zeros. */
export const ZERO_BLOCK_SHA256 = createHash('sha256')
  .update(Buffer.alloc(BLOCK_SIZE))
  .digest('base64');

const DIGEST = 32;
const ZEROS = Buffer.alloc(DIGEST * 1024);

/**
 * The SHA-256 of every block that holds something other than zeros, in
 * index order: a sorted index array beside one buffer of raw digests
 * (36 bytes a block, no object per block).
 */
export class DigestTable {
  #indexes = new Float64Array(64);
  #digests = Buffer.alloc(64 * DIGEST);
  #count = 0;

  get count(): number {
    return this.#count;
  }

  /** Adds block `index` (greater than every index added before) with its raw 32-byte digest. */
  append(index: number, digest: Buffer): void {
    if (this.#count > 0 && index <= this.#indexes[this.#count - 1]!) {
      throw new RangeError(
        `DigestTable indexes must increase (${index} after ${this.#indexes[this.#count - 1]})`,
      );
    }
    if (this.#count === this.#indexes.length) {
      const indexes = new Float64Array(this.#count * 2);
      indexes.set(this.#indexes);
      this.#indexes = indexes;
      const digests = Buffer.alloc(this.#count * 2 * DIGEST);
      this.#digests.copy(digests);
      this.#digests = digests;
    }
    this.#indexes[this.#count] = index;
    digest.copy(this.#digests, this.#count * DIGEST, 0, DIGEST);
    this.#count++;
  }

  #find(index: number): number {
    let lo = 0;
    let hi = this.#count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#indexes[mid]! < index) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.#count && this.#indexes[lo] === index ? lo : -1;
  }

  /** The base64 digest of block `index`, undefined when it holds only zeros. */
  get(index: number): string | undefined {
    const at = this.#find(index);
    return at < 0 ? undefined : this.#digests.toString('base64', at * DIGEST, (at + 1) * DIGEST);
  }

  /**
   * Hex SHA-256 over, in index order, each block's 32-byte digest, or 32
   * zero bytes for a block that holds only zeros (a hole, a zero run, zero data).
   */
  contentHash(blockCount: number): string {
    const h = createHash('sha256');
    let next = 0;
    const zeros = (n: number): void => {
      for (let left = n; left > 0; left -= ZEROS.length / DIGEST) {
        h.update(ZEROS.subarray(0, Math.min(left, ZEROS.length / DIGEST) * DIGEST));
      }
    };
    for (let k = 0; k < this.#count; k++) {
      const index = this.#indexes[k]!;
      if (index >= blockCount) break;
      zeros(index - next);
      h.update(this.#digests.subarray(k * DIGEST, (k + 1) * DIGEST));
      next = index + 1;
    }
    zeros(blockCount - next);
    return h.digest('hex');
  }
}

/** The content hash of `blockCount` blocks given their base64 digests (absent or zero: zeros). */
export function contentHashOf(blockCount: number, digests: ReadonlyMap<number, string>): string {
  const table = new DigestTable();
  for (const [i, d] of [...digests].sort((a, b) => a[0] - b[0])) {
    if (d !== ZERO_BLOCK_SHA256) table.append(i, Buffer.from(d, 'base64'));
  }
  return table.contentHash(blockCount);
}
