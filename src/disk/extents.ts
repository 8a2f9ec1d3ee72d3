import { FerryError } from '../errors/index.js';
import type { Extent, ExtentKind } from './types.js';

/**
 * Collects extents in order, merging neighbours of the same kind, and checks
 * that they tile [0, size) exactly. Format readers push per-cluster/grain/block
 * runs and yield what `take()` returns.
 */
export class ExtentBuilder {
  #pending: { offset: number; length: number; kind: ExtentKind } | undefined;
  #next = 0;
  readonly #out: Extent[] = [];

  push(offset: number, length: number, kind: ExtentKind): void {
    if (length <= 0) return;
    if (offset !== this.#next) {
      throw new FerryError(
        'FERRY_INTERNAL',
        'Cannot build the allocation map: extents are not contiguous',
        {
          details: { expected: this.#next, got: offset },
        },
      );
    }
    this.#next = offset + length;
    const p = this.#pending;
    if (p !== undefined && p.kind === kind) {
      p.length += length;
      return;
    }
    if (p !== undefined) this.#out.push({ ...p });
    this.#pending = { offset, length, kind };
  }

  /** Completed extents so far (the last, still growing one is kept back). */
  take(): Extent[] {
    return this.#out.splice(0, this.#out.length);
  }

  /** All remaining extents, including the last one. */
  finish(): Extent[] {
    const out = this.take();
    if (this.#pending !== undefined) out.push({ ...this.#pending });
    this.#pending = undefined;
    return out;
  }

  get position(): number {
    return this.#next;
  }
}

/** Sums the data extents of an allocation map. */
export async function allocatedBytes(extents: AsyncIterable<Extent>): Promise<number> {
  let total = 0;
  for await (const e of extents) if (e.kind === 'data') total += e.length;
  return total;
}

/** Collects an allocation map into an array (tests and small images). */
export async function collectExtents(extents: AsyncIterable<Extent>): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of extents) out.push(e);
  return out;
}
