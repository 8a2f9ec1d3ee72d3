import { CHUNK_BLOCKS, INODE_ALIGN, PREALLOC_BLOCKS } from './constants.js';
import type { XfsGeometry } from './geometry.js';

/** A run of linear blocks. */
export interface BlockRun {
  readonly start: number;
  readonly length: number;
}

/**
 * Free blocks an AG keeps: the kernel's per-AG metadata reserve for the free
 * inode btree (the largest that AG's inodes could need, at half-full
 * blocks) must fit in the AG's free space, or every mount warns that the
 * reservation failed. Plus a little room.
 */
export function agReserve(agLength: number): number {
  let count = Math.ceil((agLength * 8) / 64 / 126);
  let total = count;
  while (count > 1) {
    count = Math.ceil(count / 252);
    total += count;
  }
  return total + 32;
}

/** Thrown when the filesystem is too small for what the planner places; it then tries a larger one. */
export class OutOfSpace extends Error {}

/**
 * First-fit allocation of linear blocks in manifest order: never across an
 * AG boundary, never on an AG's header blocks or the log. One cursor for
 * data (runs may split), and inode chunks placed aligned, from the start.
 */
export class XfsAllocator {
  readonly #used: Uint8Array;
  /** Blocks at the end of each AG that data and inodes never take (what the kernel reserves there). */
  readonly #keep: number[];
  #cursor = 0;

  constructor(readonly geo: XfsGeometry) {
    this.#keep = Array.from({ length: geo.agcount }, (_, ag) => agReserve(geo.agLength(ag)));
    this.#used = new Uint8Array(geo.dblocks);
    for (let ag = 0; ag < geo.agcount; ag++)
      this.#used.fill(1, geo.agStart(ag), geo.agStart(ag) + PREALLOC_BLOCKS);
    const log = geo.logStartLinear;
    if (log + geo.logBlocks > geo.agStart(geo.logAg) + geo.agLength(geo.logAg))
      throw new OutOfSpace();
    this.#used.fill(1, log, log + geo.logBlocks);
  }

  markUsed(b: number): void {
    this.#used[b] = 1;
  }

  isUsed(b: number): boolean {
    return this.#used[b] === 1;
  }

  /** An inode chunk: CHUNK_BLOCKS free blocks, aligned to the inode cluster, within one AG, at `from` or after. */
  allocateChunk(from: number): number {
    const g = this.geo;
    for (let b = from; b + CHUNK_BLOCKS <= g.dblocks; ) {
      const ag = g.agOf(b);
      const agb = b - g.agStart(ag);
      const aligned = Math.ceil(agb / INODE_ALIGN) * INODE_ALIGN;
      if (aligned !== agb) {
        b = g.agStart(ag) + aligned;
        continue;
      }
      if (agb + CHUNK_BLOCKS > g.agLength(ag) - this.#keep[ag]!) {
        b = g.agStart(ag + 1);
        continue;
      }
      let free = true;
      for (let k = 0; k < CHUNK_BLOCKS && free; k++) if (this.#used[b + k] === 1) free = false;
      if (free) {
        this.#used.fill(1, b, b + CHUNK_BLOCKS);
        return b;
      }
      b += INODE_ALIGN;
    }
    throw new OutOfSpace();
  }

  readonly #prefer: BlockRun[] = [];
  #preferAt = 0;

  /**
   * Ranges (within one AG each) that allocations take first, in order, before
   * the cursor: with a base, the 512 KiB chunks it left wholly free.
   */
  prefer(ranges: readonly BlockRun[]): void {
    const g = this.geo;
    for (const r of ranges) {
      const ag = g.agOf(r.start);
      const end = Math.min(r.start + r.length, g.agStart(ag) + g.agLength(ag) - this.#keep[ag]!);
      if (end > r.start) this.#prefer.push({ start: r.start, length: end - r.start });
    }
  }

  markRun(start: number, length: number): void {
    this.#used.fill(1, start, start + length);
  }

  /** `n` blocks from the preferred ranges, then from the data cursor on, as runs that stay within one AG each. */
  allocate(n: number): BlockRun[] {
    const out: BlockRun[] = [];
    const g = this.geo;
    let left = n;
    const push = (start: number, end: number): void => {
      this.#used.fill(1, start, end);
      const last = out[out.length - 1];
      if (last !== undefined && last.start + last.length === start)
        out[out.length - 1] = { start: last.start, length: last.length + end - start };
      else out.push({ start, length: end - start });
      left -= end - start;
    };
    while (left > 0 && this.#preferAt < this.#prefer.length) {
      const r = this.#prefer[this.#preferAt]!;
      let b = r.start;
      const end = r.start + r.length;
      while (b < end && this.#used[b] === 1) b++;
      if (b >= end) {
        this.#preferAt++;
        continue;
      }
      let e = b;
      while (e < end && e - b < left && this.#used[e] !== 1) e++;
      push(b, e);
    }
    let b = this.#cursor;
    while (left > 0) {
      while (b < g.dblocks && this.#used[b] === 1) b++;
      if (b >= g.dblocks) throw new OutOfSpace();
      const ag = g.agOf(b);
      const agEnd = g.agStart(ag) + g.agLength(ag) - this.#keep[ag]!;
      if (b >= agEnd) {
        b = g.agStart(ag + 1);
        continue;
      }
      let e = b;
      while (e < agEnd && e - b < left && this.#used[e] !== 1) e++;
      push(b, e);
      b = e;
    }
    this.#cursor = b;
    return out;
  }

  /** Every block in use, as runs. */
  usedRuns(): BlockRun[] {
    const out: BlockRun[] = [];
    const u = this.#used;
    for (let b = 0; b < u.length; ) {
      if (u[b] !== 1) {
        b++;
        continue;
      }
      const s = b;
      while (b < u.length && u[b] === 1) b++;
      out.push({ start: s, length: b - s });
    }
    return out;
  }

  /** Free extents of an AG as AG-relative (start, length) pairs, in block order. */
  freeExtents(ag: number): { start: number; length: number }[] {
    const g = this.geo;
    const s = g.agStart(ag);
    const len = g.agLength(ag);
    const out: { start: number; length: number }[] = [];
    let b = 0;
    while (b < len) {
      if (this.#used[s + b] === 1) {
        b++;
        continue;
      }
      const start = b;
      while (b < len && this.#used[s + b] !== 1) b++;
      out.push({ start, length: b - start });
    }
    return out;
  }
}
