import { FerryError } from '../../../errors/index.js';
import { type BlockRun, type MapContext, pushRun } from './block-run.js';

const DIRECT = 12;

function corrupt(
  ctx: MapContext,
  message: string,
  details: Record<string, number> = {},
): FerryError {
  return new FerryError('FERRY_FS_CORRUPT', `Cannot read ext inode ${ctx.ino}: ${message}`, {
    details: { inode: ctx.ino, ...details },
  });
}

function checkBlock(ctx: MapContext, block: number, chain: readonly number[]): void {
  if (block <= ctx.sb.firstDataBlock || block >= ctx.sb.blocksCount) {
    throw corrupt(ctx, 'a block pointer lies outside the filesystem', {
      block,
      blocksCount: ctx.sb.blocksCount,
    });
  }
  if (chain.includes(block))
    throw corrupt(ctx, 'a block map points back at its own indirect block', { block });
}

/**
 * Maps logical blocks [first, first+count) of a classic (ext2/ext3) block-mapped
 * inode to physical runs: 12 direct pointers, then single, double and triple
 * indirect blocks. Pointer 0 is a hole; a hole at an indirect level skips every
 * block under it at once. Holes are absent from the result.
 */
export async function mapBlockMap(
  ctx: MapContext,
  iblock: Buffer,
  first: number,
  count: number,
): Promise<BlockRun[]> {
  const perBlock = ctx.sb.blockSize / 4;
  const spans = [1, perBlock, perBlock * perBlock, perBlock * perBlock * perBlock];
  const out: BlockRun[] = [];
  const end = first + count;
  let l = first;
  while (l < end) {
    if (l < DIRECT) {
      const ptr = iblock.readUInt32LE(l * 4);
      if (ptr !== 0) {
        checkBlock(ctx, ptr, []);
        pushRun(out, l, 1, ptr);
      }
      l++;
      continue;
    }
    // Find the indirect level holding l: level 1 (single) .. 3 (triple).
    let base = DIRECT;
    let level = 1;
    while (level <= 3 && l >= base + spans[level]!) {
      base += spans[level]!;
      level++;
    }
    if (level > 3) break; // Past the largest block-mapped file: the rest reads as zeros.
    let rel = l - base;
    let ptr = iblock.readUInt32LE((DIRECT + level - 1) * 4);
    const chain: number[] = [];
    // Descend to the table of data block pointers; `span` is how many logical
    // blocks `ptr` covers, `rel` is l's position within that span.
    let span = spans[level]!;
    let table: Buffer | null = null;
    for (let depth = level; depth >= 1; depth--) {
      if (ptr === 0) break;
      checkBlock(ctx, ptr, chain);
      chain.push(ptr);
      const t = await ctx.readBlock(ptr);
      span = spans[depth - 1]!;
      if (depth === 1) {
        table = t;
        break;
      }
      ptr = t.readUInt32LE(Math.floor(rel / span) * 4);
      rel %= span;
    }
    if (table === null) {
      // A hole covering the rest of this pointer's span.
      l += span - rel;
      continue;
    }
    for (let i = rel; i < perBlock && l < end; i++, l++) {
      const p = table.readUInt32LE(i * 4);
      if (p !== 0) {
        checkBlock(ctx, p, chain);
        pushRun(out, l, 1, p);
      }
    }
  }
  return out;
}
