import { ext4Crc, groupSeed } from './checksum.js';
import {
  BG_INODE_ZEROED,
  BLOCK_SIZE,
  BLOCKS_PER_GROUP,
  COMPAT_DIR_INDEX,
  COMPAT_EXT_ATTR,
  COMPAT_HAS_JOURNAL,
  DESC_SIZE,
  EXTRA_ISIZE,
  FIRST_INO,
  INCOMPAT_64BIT,
  INCOMPAT_EXTENTS,
  INCOMPAT_FILETYPE,
  INODE_SIZE,
  JOURNAL_INO,
  LOG_BLOCK_SIZE,
  RO_COMPAT_DIR_NLINK,
  RO_COMPAT_EXTRA_ISIZE,
  RO_COMPAT_HUGE_FILE,
  RO_COMPAT_LARGE_FILE,
  RO_COMPAT_METADATA_CSUM,
  RO_COMPAT_SPARSE_SUPER,
  SUPER_MAGIC,
} from './constants.js';

/** What the superblock says about the whole filesystem. */
export interface SuperblockFields {
  readonly blocksCount: number;
  readonly groups: number;
  readonly inodesPerGroup: number;
  readonly freeBlocks: number;
  readonly freeInodes: number;
  readonly reservedBlocks: number;
  readonly uuid: Buffer;
  readonly hashSeed: Buffer;
  readonly label: string;
  /** Seconds since the epoch for mkfs/write/check times. */
  readonly time: number;
  /** i_block of the journal inode and its size, backed up in the superblock. */
  readonly journalIBlock: Buffer;
  readonly journalBytes: number;
}

/** One block group's descriptor. */
export interface GroupDesc {
  readonly blockBitmap: number;
  readonly inodeBitmap: number;
  readonly inodeTable: number;
  readonly freeBlocks: number;
  readonly freeInodes: number;
  readonly usedDirs: number;
  readonly blockBitmapCsum: number;
  readonly inodeBitmapCsum: number;
}

/** Groups holding a superblock and descriptor backup (sparse_super): 0, 1 and powers of 3, 5, 7. */
export function hasBackup(group: number): boolean {
  if (group <= 1) return true;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < group) p *= base;
    if (p === group) return true;
  }
  return false;
}

/** Blocks holding the group descriptor table. */
export function gdtBlocks(groups: number): number {
  return Math.ceil((groups * DESC_SIZE) / BLOCK_SIZE);
}

const lo = (n: number): number => n % 2 ** 32;
const hi = (n: number): number => Math.floor(n / 2 ** 32);

/** The 1024-byte superblock as stored in group `group` (its copy names its group). */
export function encodeSuperblock(f: SuperblockFields, group: number): Buffer {
  const b = Buffer.alloc(1024);
  b.writeUInt32LE(f.groups * f.inodesPerGroup, 0x00);
  b.writeUInt32LE(lo(f.blocksCount), 0x04);
  b.writeUInt32LE(lo(f.reservedBlocks), 0x08);
  b.writeUInt32LE(lo(f.freeBlocks), 0x0c);
  b.writeUInt32LE(f.freeInodes, 0x10);
  b.writeUInt32LE(0, 0x14); // first data block (4 KiB blocks)
  b.writeUInt32LE(LOG_BLOCK_SIZE, 0x18);
  b.writeUInt32LE(LOG_BLOCK_SIZE, 0x1c);
  b.writeUInt32LE(BLOCKS_PER_GROUP, 0x20);
  b.writeUInt32LE(BLOCKS_PER_GROUP, 0x24);
  b.writeUInt32LE(f.inodesPerGroup, 0x28);
  b.writeUInt32LE(0, 0x2c); // never mounted
  b.writeUInt32LE(f.time, 0x30);
  b.writeUInt16LE(0, 0x34);
  b.writeUInt16LE(0xffff, 0x36); // no mount-count checks
  b.writeUInt16LE(SUPER_MAGIC, 0x38);
  b.writeUInt16LE(1, 0x3a); // clean
  b.writeUInt16LE(1, 0x3c); // errors: continue
  b.writeUInt32LE(f.time, 0x40);
  b.writeUInt32LE(0, 0x48); // Linux
  b.writeUInt32LE(1, 0x4c); // dynamic revision
  b.writeUInt32LE(FIRST_INO, 0x54);
  b.writeUInt16LE(INODE_SIZE, 0x58);
  b.writeUInt16LE(group, 0x5a);
  b.writeUInt32LE(COMPAT_HAS_JOURNAL | COMPAT_EXT_ATTR | COMPAT_DIR_INDEX, 0x5c);
  b.writeUInt32LE(INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_64BIT, 0x60);
  b.writeUInt32LE(
    RO_COMPAT_SPARSE_SUPER |
      RO_COMPAT_LARGE_FILE |
      RO_COMPAT_HUGE_FILE |
      RO_COMPAT_DIR_NLINK |
      RO_COMPAT_EXTRA_ISIZE |
      RO_COMPAT_METADATA_CSUM,
    0x64,
  );
  f.uuid.copy(b, 0x68);
  Buffer.from(f.label).subarray(0, 16).copy(b, 0x78);
  b.writeUInt32LE(JOURNAL_INO, 0xe0);
  f.hashSeed.copy(b, 0xec);
  b.writeUInt8(1, 0xfc); // half_md4 directory hashes
  b.writeUInt8(1, 0xfd); // journal inode backed up in s_jnl_blocks
  b.writeUInt16LE(DESC_SIZE, 0xfe);
  b.writeUInt32LE(0x000c, 0x100); // default mount options: user_xattr, acl
  b.writeUInt32LE(f.time, 0x108);
  f.journalIBlock.copy(b, 0x10c, 0, 60);
  b.writeUInt32LE(hi(f.journalBytes), 0x10c + 60);
  b.writeUInt32LE(lo(f.journalBytes), 0x10c + 64);
  b.writeUInt32LE(hi(f.blocksCount), 0x150);
  b.writeUInt32LE(hi(f.reservedBlocks), 0x154);
  b.writeUInt32LE(hi(f.freeBlocks), 0x158);
  b.writeUInt16LE(EXTRA_ISIZE, 0x15c);
  b.writeUInt16LE(EXTRA_ISIZE, 0x15e);
  b.writeUInt32LE(0x1, 0x160); // signed directory hash, as on x86
  b.writeUInt8(1, 0x175); // checksums: crc32c
  b.writeUInt32LE(ext4Crc(0xffffffff, b.subarray(0, 0x3fc)), 0x3fc);
  return b;
}

/** The group descriptor table: descriptors with their checksums, padded to whole blocks. */
export function encodeGdt(descs: readonly GroupDesc[], fsSeedValue: number): Buffer {
  const b = Buffer.alloc(gdtBlocks(descs.length) * BLOCK_SIZE);
  descs.forEach((d, g) => {
    const at = g * DESC_SIZE;
    const e = b.subarray(at, at + DESC_SIZE);
    e.writeUInt32LE(lo(d.blockBitmap), 0x00);
    e.writeUInt32LE(lo(d.inodeBitmap), 0x04);
    e.writeUInt32LE(lo(d.inodeTable), 0x08);
    e.writeUInt16LE(d.freeBlocks & 0xffff, 0x0c);
    e.writeUInt16LE(d.freeInodes & 0xffff, 0x0e);
    e.writeUInt16LE(d.usedDirs & 0xffff, 0x10);
    e.writeUInt16LE(BG_INODE_ZEROED, 0x12);
    e.writeUInt16LE(d.blockBitmapCsum & 0xffff, 0x18);
    e.writeUInt16LE(d.inodeBitmapCsum & 0xffff, 0x1a);
    e.writeUInt16LE(0, 0x1c); // itable_unused: every inode is looked at
    e.writeUInt32LE(hi(d.blockBitmap), 0x20);
    e.writeUInt32LE(hi(d.inodeBitmap), 0x24);
    e.writeUInt32LE(hi(d.inodeTable), 0x28);
    e.writeUInt16LE(d.freeBlocks >>> 16, 0x2c);
    e.writeUInt16LE(d.freeInodes >>> 16, 0x2e);
    e.writeUInt16LE(d.usedDirs >>> 16, 0x30);
    e.writeUInt16LE(d.blockBitmapCsum >>> 16, 0x38);
    e.writeUInt16LE(d.inodeBitmapCsum >>> 16, 0x3a);
    e.writeUInt16LE(ext4Crc(groupSeed(fsSeedValue, g), e) & 0xffff, 0x1e);
  });
  return b;
}
