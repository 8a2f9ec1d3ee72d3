import type { ExtSuperblock } from './superblock.js';

/** Logical blocks [logical, logical+count) of a file stored at physical blocks [physical, physical+count). */
export interface BlockRun {
  readonly logical: number;
  readonly count: number;
  readonly physical: number;
}

/** What the block mappers need from the driver: the geometry and cached metadata block reads. */
export interface MapContext {
  readonly sb: ExtSuperblock;
  readonly ino: number;
  /** Reads one filesystem block of metadata (through the driver's cache). */
  readBlock(block: number): Promise<Buffer>;
}

/** Appends a run, merging it into the previous one when both are contiguous. */
export function pushRun(out: BlockRun[], logical: number, count: number, physical: number): void {
  const last = out.at(-1);
  if (
    last !== undefined &&
    last.logical + last.count === logical &&
    last.physical + last.count === physical
  ) {
    out[out.length - 1] = {
      logical: last.logical,
      count: last.count + count,
      physical: last.physical,
    };
  } else {
    out.push({ logical, count, physical });
  }
}
