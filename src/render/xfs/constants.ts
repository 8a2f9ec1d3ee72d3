/**
 * The XFS geometry and on-disk constants ferry's writer uses: v5 (CRC)
 * metadata, 4 KiB blocks and directory blocks, 512-byte sectors and inodes,
 * ftype in directory entries, bigtime timestamps, the free inode btree, no
 * sparse inodes, no reverse map or reflink, no inode btree counters, no
 * realtime section. All on-disk
 * integers are big-endian; CRC-32C values are stored little-endian.
 */
export const BLOCK_SIZE = 4096;
export const BLOCK_LOG = 12;
export const SECTOR_SIZE = 512;
export const SECTOR_LOG = 9;
export const INODE_SIZE = 512;
export const INODE_LOG = 9;
export const INODES_PER_BLOCK = BLOCK_SIZE / INODE_SIZE;
export const INOPB_LOG = 3;
/** Inodes come in chunks of 64 (8 blocks), aligned to 4 blocks as the inode cluster is. */
export const INODES_PER_CHUNK = 64;
export const CHUNK_BLOCKS = INODES_PER_CHUNK / INODES_PER_BLOCK;
export const INODE_ALIGN = 4;
/** The inode core of a v3 inode; the data and attribute forks share the rest. */
export const INODE_CORE = 176;
export const LITERAL_SIZE = INODE_SIZE - INODE_CORE;
/** Per AG: block 0 holds the superblock, AGF, AGI and AGFL sectors; 1-4 the btree roots. */
export const BNO_ROOT = 1;
export const CNT_ROOT = 2;
export const INO_ROOT = 3;
export const FINO_ROOT = 4;
export const PREALLOC_BLOCKS = 5;
/** The AG size bounds: 16 MiB (what the kernel asks) to 1 TiB (what the format allows). */
export const MIN_AG_BLOCKS = 4096;
export const MAX_AG_BLOCKS = 2 ** 28;
/** Internal log blocks: above the kernel's minimum for this geometry (857-924 blocks). */
export const LOG_BLOCKS = 1024;
/**
 * The 64 MiB log mkfs.xfs gives filesystems from 300 MiB on; ferry gives it
 * to a given size from 1.25 GiB on, where it takes at most 5 % (a disk's
 * margin of free space stays free) and the tree leaves room for it.
 */
export const LARGE_LOG_BLOCKS = 16384;
export const LARGE_LOG_FROM = 20 * LARGE_LOG_BLOCKS;
export const NULL_AGINO = 0xffffffff;
export const NULL_AGBLOCK = 0xffffffff;
export const NULL_FSBLOCK = 0xffffffffffffffffn;
/** Longest extent a bmbt record holds (21 bits). */
export const MAX_EXTENT_BLOCKS = 2 ** 21 - 1;
/** XFS refuses longer symlink targets. */
export const SYMLINK_MAX = 1024;

export const MAGIC = {
  sb: 0x58465342, // XFSB
  agf: 0x58414746, // XAGF
  agi: 0x58414749, // XAGI
  agfl: 0x5841464c, // XAFL
  bno: 0x41423342, // AB3B
  cnt: 0x41423343, // AB3C
  ino: 0x49414233, // IAB3
  fino: 0x46494233, // FIB3
  bmap: 0x424d4133, // BMA3
  inode: 0x494e, // IN
  dirBlock: 0x58444233, // XDB3
  dirData: 0x58444433, // XDD3
  dirFree: 0x58444633, // XDF3
  dirLeaf1: 0x3df1,
  dirLeafN: 0x3dff,
  daNode: 0x3ebe,
  attrLeaf: 0x3bee,
  attrRemote: 0x5841524d, // XARM
  symlink: 0x58534c4d, // XSLM
} as const;

export const S_IFMT = 0o170000;

/** di_format values. */
export const FMT_DEV = 0;
export const FMT_LOCAL = 1;
export const FMT_EXTENTS = 2;
export const FMT_BTREE = 3;

/** Directory entry file types (XFS_DIR3_FT_*). */
export const FTYPE = { file: 1, dir: 2, char: 3, block: 4, fifo: 5, symlink: 7 } as const;
