import { FerryError } from '../../errors/index.js';
import { ext4Crc } from './checksum.js';
import {
  BLOCK_SIZE,
  EXTENT_MAGIC,
  INODE_EXTENTS,
  LEAF_EXTENTS,
  MAX_EXTENT_BLOCKS,
} from './constants.js';

/** A run of a file's blocks: logical block `logical` onward sits at physical block `physical`. */
export interface Run {
  readonly logical: number;
  readonly physical: number;
  readonly length: number;
}

/** Splits runs into extents of at most MAX_EXTENT_BLOCKS and merges adjacent ones. */
export function toExtents(runs: readonly Run[]): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    let { logical, physical, length } = r;
    const last = out[out.length - 1];
    if (
      last !== undefined &&
      last.logical + last.length === logical &&
      last.physical + last.length === physical &&
      last.length < MAX_EXTENT_BLOCKS
    ) {
      const take = Math.min(length, MAX_EXTENT_BLOCKS - last.length);
      out[out.length - 1] = { ...last, length: last.length + take };
      logical += take;
      physical += take;
      length -= take;
    }
    while (length > 0) {
      const n = Math.min(length, MAX_EXTENT_BLOCKS);
      out.push({ logical, physical, length: n });
      logical += n;
      physical += n;
      length -= n;
    }
  }
  return out;
}

/** Leaf blocks an extent tree of `extents` extents needs (0: they fit in the inode). */
export function leafBlocksFor(extents: number): number {
  if (extents <= INODE_EXTENTS) return 0;
  const leaves = Math.ceil(extents / LEAF_EXTENTS);
  if (leaves > INODE_EXTENTS)
    throw new FerryError(
      'FERRY_RENDER_LIMIT',
      `Cannot lay out a file: it needs ${extents} extents, more than a two-level tree of ${INODE_EXTENTS * LEAF_EXTENTS}`,
    );
  return leaves;
}

function header(buf: Buffer, at: number, entries: number, max: number, depth: number): void {
  buf.writeUInt16LE(EXTENT_MAGIC, at);
  buf.writeUInt16LE(entries, at + 2);
  buf.writeUInt16LE(max, at + 4);
  buf.writeUInt16LE(depth, at + 6);
  buf.writeUInt32LE(0, at + 8);
}

function extent(buf: Buffer, at: number, e: Run): void {
  buf.writeUInt32LE(e.logical, at);
  buf.writeUInt16LE(e.length, at + 4);
  buf.writeUInt16LE(Math.floor(e.physical / 2 ** 32), at + 6);
  buf.writeUInt32LE(e.physical % 2 ** 32, at + 8);
}

/**
 * The extent tree of a file: the 60-byte root for i_block and, past four
 * extents, leaf blocks at `leafBlocks` (as many as leafBlocksFor says),
 * each with its checksum under the inode's seed.
 */
export function buildExtentTree(
  extents: readonly Run[],
  leafBlocks: readonly number[],
  inodeSeedValue: number,
): { iBlock: Buffer; leaves: { block: number; data: Buffer }[] } {
  const iBlock = Buffer.alloc(60);
  if (extents.length <= INODE_EXTENTS) {
    header(iBlock, 0, extents.length, INODE_EXTENTS, 0);
    for (const [i, e] of extents.entries()) extent(iBlock, 12 + i * 12, e);
    return { iBlock, leaves: [] };
  }
  const leaves: { block: number; data: Buffer }[] = [];
  header(iBlock, 0, leafBlocks.length, INODE_EXTENTS, 1);
  for (let l = 0; l < leafBlocks.length; l++) {
    const part = extents.slice(l * LEAF_EXTENTS, (l + 1) * LEAF_EXTENTS);
    const block = leafBlocks[l]!;
    const data = Buffer.alloc(BLOCK_SIZE);
    header(data, 0, part.length, LEAF_EXTENTS, 0);
    for (const [i, e] of part.entries()) extent(data, 12 + i * 12, e);
    const tail = 12 + LEAF_EXTENTS * 12;
    data.writeUInt32LE(ext4Crc(inodeSeedValue, data.subarray(0, tail)), tail);
    leaves.push({ block, data });
    // Index entry: first logical block of the leaf, and where the leaf is.
    const at = 12 + l * 12;
    iBlock.writeUInt32LE(part[0]!.logical, at);
    iBlock.writeUInt32LE(block % 2 ** 32, at + 4);
    iBlock.writeUInt16LE(Math.floor(block / 2 ** 32), at + 8);
    iBlock.writeUInt16LE(0, at + 10);
  }
  return { iBlock, leaves };
}
