import type { DiskEventListener } from './events.js';
import { throwIfAborted } from './file-source.js';
import type { DiskImage, Extent } from './types.js';
import { isZero } from './zero.js';

export interface CompareResult {
  readonly identical: boolean;
  /**
   * Offset of the 512-byte sector holding the first difference (what
   * `qemu-img compare` prints), or null when identical.
   */
  readonly firstDifference: number | null;
  /** Exact byte offset of the first difference, or null. */
  readonly firstDifferingByte: number | null;
  readonly sizeA: number;
  readonly sizeB: number;
}

const COMPARE_CHUNK = 1024 * 1024;

/** Iterates an allocation map as a cursor. */
class ExtentCursor {
  readonly #it: AsyncIterator<Extent>;
  current: Extent | undefined;
  constructor(extents: AsyncIterable<Extent>) {
    this.#it = extents[Symbol.asyncIterator]();
  }
  /** Advances until the current extent contains `offset`. */
  async seek(offset: number): Promise<Extent | undefined> {
    while (this.current === undefined || this.current.offset + this.current.length <= offset) {
      const n = await this.#it.next();
      if (n.done === true) {
        this.current = undefined;
        return undefined;
      }
      this.current = n.value;
    }
    return this.current;
  }
}

function firstDiff(a: Buffer, b: Buffer): number {
  for (let step = 4096, off = 0; off < a.length; off += step) {
    const end = Math.min(off + step, a.length);
    if (!a.subarray(off, end).equals(b.subarray(off, end))) {
      for (let i = off; i < end; i++) if (a[i] !== b[i]) return i;
    }
  }
  return -1;
}

function diffResult(at: number, a: DiskImage, b: DiskImage): CompareResult {
  return {
    identical: false,
    firstDifference: Math.floor(at / 512) * 512,
    firstDifferingByte: at,
    sizeA: a.virtualSize,
    sizeB: b.virtualSize,
  };
}

/**
 * Compares two virtual disks as qemu-img compare does: ranges unallocated
 * or zero in both are equal without reading; when sizes differ, the tail of
 * the larger one must read as zeros.
 */
export async function compareImages(
  a: DiskImage,
  b: DiskImage,
  options: { signal?: AbortSignal; onEvent?: DiskEventListener } = {},
): Promise<CompareResult> {
  const { signal, onEvent } = options;
  const common = Math.min(a.virtualSize, b.virtualSize);
  const total = Math.max(a.virtualSize, b.virtualSize);
  const ca = new ExtentCursor(a.extents(signal));
  const cb = new ExtentCursor(b.extents(signal));
  let pos = 0;
  while (pos < common) {
    throwIfAborted(signal);
    const ea = await ca.seek(pos);
    const eb = await cb.seek(pos);
    if (ea === undefined || eb === undefined) break;
    const end = Math.min(ea.offset + ea.length, eb.offset + eb.length, common);
    if (ea.kind !== 'data' && eb.kind !== 'data') {
      pos = end;
      continue;
    }
    for (let off = pos; off < end; off += COMPARE_CHUNK) {
      const len = Math.min(COMPARE_CHUNK, end - off);
      const [ba, bb] = await Promise.all([a.read(off, len, signal), b.read(off, len, signal)]);
      const d = firstDiff(ba, bb);
      if (d >= 0) return diffResult(off + d, a, b);
      onEvent?.({ type: 'progress', operation: 'compare', done: off + len, total });
    }
    pos = end;
  }
  // The part only the larger image has must read as zeros.
  const larger = a.virtualSize > b.virtualSize ? a : b;
  const cl = larger === a ? ca : cb;
  pos = common;
  while (pos < larger.virtualSize) {
    throwIfAborted(signal);
    const e = await cl.seek(pos);
    if (e === undefined) break;
    const end = e.offset + e.length;
    if (e.kind === 'data') {
      for (let off = pos; off < end; off += COMPARE_CHUNK) {
        const len = Math.min(COMPARE_CHUNK, end - off);
        const buf = await larger.read(off, len, signal);
        if (!isZero(buf)) return diffResult(off + firstDiff(buf, Buffer.alloc(len)), a, b);
      }
    }
    pos = end;
  }
  return {
    identical: true,
    firstDifference: null,
    firstDifferingByte: null,
    sizeA: a.virtualSize,
    sizeB: b.virtualSize,
  };
}
