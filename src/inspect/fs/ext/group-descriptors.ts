import { FerryError } from '../../../errors/index.js';
import { COMPAT, type ExtSuperblock, INCOMPAT, RO_COMPAT } from './superblock.js';

export const BG_INODE_UNINIT = 0x1;

export interface GroupDescriptor {
  readonly inodeTable: number;
  readonly flags: number;
  readonly itableUnused: number;
}

function isPowerOf(n: number, base: number): boolean {
  let v = base;
  while (v < n) v *= base;
  return v === n;
}

/** Whether a block group holds a superblock backup (and so a descriptor copy). */
export function groupHasSuper(sb: ExtSuperblock, group: number): boolean {
  if (group === 0) return true;
  if (sb.compat & COMPAT.sparseSuper2)
    return group === sb.backupBgs[0] || group === sb.backupBgs[1];
  if (group <= 1 || !(sb.roCompat & RO_COMPAT.sparseSuper)) return true;
  if (group % 2 === 0) return false;
  return isPowerOf(group, 3) || isPowerOf(group, 5) || isPowerOf(group, 7);
}

/**
 * The block holding the descriptor of `group`, and the descriptor's offset in
 * it. Classic layout: a table right after the superblock. meta_bg: each run of
 * (block size / descriptor size) groups keeps its descriptor block in the first
 * group of the run, after that group's superblock backup.
 */
export function descriptorLocation(
  sb: ExtSuperblock,
  group: number,
): { block: number; offset: number } {
  const perBlock = sb.blockSize / sb.descSize;
  const nr = Math.floor(group / perBlock);
  const offset = (group % perBlock) * sb.descSize;
  const superBlock = sb.blockSize === 1024 ? 1 : 0;
  let block: number;
  if (!(sb.incompat & INCOMPAT.metaBg) || nr < sb.firstMetaBg) {
    block = superBlock + nr + 1;
  } else {
    const first = nr * perBlock;
    let hasSuper = groupHasSuper(sb, first) ? 1 : 0;
    if (sb.blockSize === 1024 && nr === 0 && sb.firstDataBlock === 0) hasSuper++;
    block = hasSuper + first * sb.blocksPerGroup + sb.firstDataBlock;
  }
  if (block >= sb.blocksCount) {
    throw new FerryError(
      'FERRY_FS_CORRUPT',
      `Cannot read ext group descriptor ${group}: its block ${block} lies outside the filesystem`,
      { details: { group, block } },
    );
  }
  return { block, offset };
}

/** Decodes one group descriptor and checks its inode table lies inside the filesystem. */
export function parseGroupDescriptor(sb: ExtSuperblock, group: number, d: Buffer): GroupDescriptor {
  const wide = sb.descSize >= 64;
  const inodeTable = d.readUInt32LE(0x08) + (wide ? d.readUInt32LE(0x28) * 2 ** 32 : 0);
  const flags = d.readUInt16LE(0x12);
  const itableUnused = d.readUInt16LE(0x1c) + (wide ? d.readUInt16LE(0x32) * 65536 : 0);
  const tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
  if (inodeTable <= sb.firstDataBlock || inodeTable + tableBlocks > sb.blocksCount) {
    throw new FerryError(
      'FERRY_FS_CORRUPT',
      `Cannot read ext group ${group}: its inode table (block ${inodeTable}) lies outside the filesystem`,
      { details: { group, inodeTable, blocksCount: sb.blocksCount } },
    );
  }
  return { inodeTable, flags, itableUnused };
}
