import { FerryError } from '../../errors/index.js';
import type { Run } from './extents.js';

/** Thrown inside a layout attempt when the groups planned are too few; the planner adds one. */
export class OutOfSpace extends Error {}

/**
 * Free-space bookkeeping for one layout attempt. `used` blocks go into the
 * block bitmaps; `avoided` blocks stay free but are never handed out (room
 * for the descriptor table to grow). Allocation is next-fit from a cursor,
 * so a render places data in the order it asks, and optionally first from a
 * list of preferred free ranges (the whole free chunks of a base image).
 */
export class BlockAllocator {
  readonly capacity: number;
  readonly #used: Uint8Array;
  readonly #avoid: Uint8Array;
  #cursor = 0;
  #preferred: { start: number; end: number }[] = [];

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#used = new Uint8Array(capacity);
    this.#avoid = new Uint8Array(capacity);
  }

  isUsed(block: number): boolean {
    return this.#used[block] === 1;
  }

  markUsed(start: number, length: number): void {
    if (start < 0 || start + length > this.capacity) throw new OutOfSpace();
    for (let b = start; b < start + length; b++) {
      if (this.#used[b] === 1)
        throw new FerryError(
          'FERRY_INTERNAL',
          `Cannot lay out the filesystem: block ${b} is used twice`,
        );
      this.#used[b] = 1;
    }
  }

  avoid(start: number, length: number): void {
    this.#avoid.fill(1, start, Math.min(this.capacity, start + length));
  }

  /** Allocation continues from here (for blocks not taken from the preferred ranges). */
  setCursor(block: number): void {
    this.#cursor = block;
  }

  /** Free ranges to fill first, in order. */
  prefer(ranges: { start: number; end: number }[]): void {
    this.#preferred = ranges.map((r) => ({ ...r }));
  }

  #free(b: number): boolean {
    return this.#used[b] === 0 && this.#avoid[b] === 0;
  }

  /** Allocates `count` blocks as few runs as the free space allows; logical numbering from `logical`. */
  allocate(count: number, logical = 0): Run[] {
    const runs: Run[] = [];
    let left = count;
    let l = logical;
    const take = (start: number, length: number): void => {
      this.markUsed(start, length);
      const last = runs[runs.length - 1];
      if (last !== undefined && last.physical + last.length === start)
        runs[runs.length - 1] = { ...last, length: last.length + length };
      else runs.push({ logical: l, physical: start, length });
      l += length;
      left -= length;
    };
    while (left > 0 && this.#preferred.length > 0) {
      const r = this.#preferred[0]!;
      while (r.start < r.end && left > 0) {
        if (!this.#free(r.start)) {
          r.start++;
          continue;
        }
        let n = 1;
        while (n < left && r.start + n < r.end && this.#free(r.start + n)) n++;
        take(r.start, n);
        r.start += n;
      }
      if (r.start >= r.end) this.#preferred.shift();
    }
    while (left > 0) {
      while (this.#cursor < this.capacity && !this.#free(this.#cursor)) this.#cursor++;
      if (this.#cursor >= this.capacity) throw new OutOfSpace();
      let n = 1;
      while (n < left && this.#cursor + n < this.capacity && this.#free(this.#cursor + n)) n++;
      take(this.#cursor, n);
      this.#cursor += n;
    }
    return runs;
  }

  /** Highest used block + 1. */
  end(): number {
    for (let b = this.capacity - 1; b >= 0; b--) if (this.#used[b] === 1) return b + 1;
    return 0;
  }

  /** The used bits of [start, start + length) as a bitmap block (set bits past `limit` too). */
  bitmap(start: number, length: number, limit: number, bytes: number): Buffer {
    const out = Buffer.alloc(bytes);
    for (let i = 0; i < length; i++) {
      const b = start + i;
      if (b >= limit || this.#used[b] === 1) out[i >> 3] = (out[i >> 3] ?? 0) | (1 << (i & 7));
    }
    return out;
  }

  usedIn(start: number, end: number): number {
    let n = 0;
    for (let b = start; b < Math.min(end, this.capacity); b++) n += this.#used[b]!;
    return n;
  }
}
