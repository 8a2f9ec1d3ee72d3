import { FerryError } from '../../../errors/index.js';
import { type BlockRun, type MapContext, pushRun } from './block-run.js';

const EXTENT_MAGIC = 0xf30a;
/** Deepest extent tree accepted (ext4 itself never builds more than 5 levels). */
export const MAX_EXTENT_DEPTH = 5;
/** Tree nodes read while mapping one range: a cap against hostile, very wide trees. */
const MAX_NODES_PER_MAP = 65_536;
/** Logical block numbers are 32-bit. */
const LOGICAL_END = 2 ** 32;
/** An ee_len above this marks an uninitialized (preallocated, reads as zeros) extent. */
const INIT_MAX_LEN = 32_768;

function corrupt(
  ctx: MapContext,
  message: string,
  details: Record<string, number> = {},
): FerryError {
  return new FerryError('FERRY_FS_CORRUPT', `Cannot read ext inode ${ctx.ino}: ${message}`, {
    details: { inode: ctx.ino, ...details },
  });
}

interface Walk {
  readonly ctx: MapContext;
  readonly first: number;
  readonly end: number;
  readonly out: BlockRun[];
  readonly seen: Set<number>;
}

function checkPhysical(w: Walk, start: number, count: number): void {
  const sb = w.ctx.sb;
  if (start <= sb.firstDataBlock || start + count > sb.blocksCount) {
    throw corrupt(w.ctx, 'an extent points outside the filesystem', {
      block: start,
      count,
      blocksCount: sb.blocksCount,
    });
  }
}

/**
 * Walks one extent tree node (`node` holds the header and entries; `lo..hi`
 * is the logical range the parent assigned to it). Only children whose range
 * meets [first, end) are read. Loops are impossible to follow: each level must
 * be exactly one shallower than its parent, and no node is read twice.
 */
async function walkNode(
  w: Walk,
  node: Buffer,
  expectDepth: number | null,
  lo: number,
  hi: number,
): Promise<void> {
  if (node.length < 12 || node.readUInt16LE(0) !== EXTENT_MAGIC)
    throw corrupt(w.ctx, 'an extent header has a bad magic');
  const entries = node.readUInt16LE(2);
  const max = node.readUInt16LE(4);
  const depth = node.readUInt16LE(6);
  const capacity = Math.floor((node.length - 12) / 12);
  if (max === 0 || max > capacity || entries > max) {
    throw corrupt(w.ctx, 'an extent node has an invalid entry count', { entries, max, capacity });
  }
  if (expectDepth === null ? depth > MAX_EXTENT_DEPTH : depth !== expectDepth) {
    throw corrupt(w.ctx, 'an extent tree has an invalid depth', {
      depth,
      expected: expectDepth ?? MAX_EXTENT_DEPTH,
    });
  }
  if (depth === 0) {
    let prevEnd = lo;
    for (let i = 0; i < entries; i++) {
      const at = 12 + i * 12;
      const logical = node.readUInt32LE(at);
      const rawLen = node.readUInt16LE(at + 4);
      const physical = node.readUInt16LE(at + 6) * 2 ** 32 + node.readUInt32LE(at + 8);
      const uninit = rawLen > INIT_MAX_LEN;
      const len = uninit ? rawLen - INIT_MAX_LEN : rawLen;
      if (len === 0) throw corrupt(w.ctx, 'an extent has length zero', { logical });
      if (logical < prevEnd || logical + len > hi) {
        throw corrupt(w.ctx, 'extents overlap or are out of order', { logical, len, prevEnd, hi });
      }
      prevEnd = logical + len;
      checkPhysical(w, physical, len);
      // Uninitialized extents read as zeros: they contribute no run.
      if (uninit) continue;
      const from = Math.max(logical, w.first);
      const to = Math.min(logical + len, w.end);
      if (from < to) pushRun(w.out, from, to - from, physical + (from - logical));
    }
    return;
  }
  let prev = -1;
  for (let i = 0; i < entries; i++) {
    const at = 12 + i * 12;
    const start = node.readUInt32LE(at);
    if (start <= prev || start < lo || start >= hi) {
      throw corrupt(w.ctx, 'extent index entries overlap or are out of order', {
        logical: start,
        lo,
        hi,
      });
    }
    prev = start;
    const next = i + 1 < entries ? node.readUInt32LE(at + 12) : hi;
    const childEnd = Math.min(Math.max(next, start + 1), hi);
    if (childEnd <= w.first || start >= w.end) continue;
    const child = node.readUInt16LE(at + 8) * 2 ** 32 + node.readUInt32LE(at + 4);
    checkPhysical(w, child, 1);
    if (w.seen.has(child)) throw corrupt(w.ctx, 'an extent tree loops', { block: child });
    if (w.seen.size >= MAX_NODES_PER_MAP) {
      throw new FerryError(
        'FERRY_FS_LIMIT',
        `Cannot read ext inode ${w.ctx.ino}: its extent tree is too large`,
        {
          details: { inode: w.ctx.ino, nodes: w.seen.size },
        },
      );
    }
    w.seen.add(child);
    const block = await w.ctx.readBlock(child);
    await walkNode(w, block, depth - 1, start, childEnd);
  }
}

/**
 * Maps logical blocks [first, first+count) of an extent-mapped inode
 * (`root` is its i_block) to physical runs, sorted by logical block. Holes
 * and uninitialized extents are absent from the result (they read as zeros).
 */
export async function mapExtents(
  ctx: MapContext,
  root: Buffer,
  first: number,
  count: number,
): Promise<BlockRun[]> {
  const out: BlockRun[] = [];
  const end = Math.min(first + count, LOGICAL_END);
  if (first >= end) return out;
  await walkNode({ ctx, first, end, out, seen: new Set() }, root, null, 0, LOGICAL_END);
  return out;
}
