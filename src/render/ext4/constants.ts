/**
 * On-disk constants of the ext4 filesystem ferry writes. The feature set is
 * what mke2fs gives a modern root filesystem (64bit, extents, metadata_csum,
 * a journal), minus the parts ferry does not build: no resize inode (the
 * kernel converts to meta_bg when it grows past the reserved descriptors),
 * no flex_bg packing (each group keeps its own bitmaps and inode table at
 * its start, so groups appended by a later revision move nothing).
 */
export const BLOCK_SIZE = 4096;
export const LOG_BLOCK_SIZE = 2; // 1024 << 2
export const BLOCKS_PER_GROUP = 32768;
export const INODE_SIZE = 256;
export const EXTRA_ISIZE = 32;
export const DESC_SIZE = 64;
export const FIRST_INO = 11;
export const ROOT_INO = 2;
export const JOURNAL_INO = 8;

export const SUPER_MAGIC = 0xef53;
export const XATTR_MAGIC = 0xea020000;
export const EXTENT_MAGIC = 0xf30a;
export const JOURNAL_MAGIC = 0xc03b3998;

export const COMPAT_HAS_JOURNAL = 0x4;
export const COMPAT_EXT_ATTR = 0x8;
export const COMPAT_DIR_INDEX = 0x20;

export const INCOMPAT_FILETYPE = 0x2;
export const INCOMPAT_EXTENTS = 0x40;
export const INCOMPAT_64BIT = 0x80;

export const RO_COMPAT_SPARSE_SUPER = 0x1;
export const RO_COMPAT_LARGE_FILE = 0x2;
export const RO_COMPAT_HUGE_FILE = 0x8;
export const RO_COMPAT_DIR_NLINK = 0x20;
export const RO_COMPAT_EXTRA_ISIZE = 0x40;
export const RO_COMPAT_METADATA_CSUM = 0x400;

export const INODE_FLAG_EXTENTS = 0x80000;
export const BG_INODE_ZEROED = 0x4;

/** Directory entry file types (the filetype feature). */
export const FT = { file: 1, dir: 2, char: 3, block: 4, fifo: 5, symlink: 7 } as const;

/** Longest extent of initialized blocks. */
export const MAX_EXTENT_BLOCKS = 32768;
/** Extents that fit in the inode's i_block, and in one leaf block (after its tail). */
export const INODE_EXTENTS = 4;
export const LEAF_EXTENTS = Math.floor((BLOCK_SIZE - 12) / 12);
/** Symlink targets shorter than this live in i_block ("fast" symlinks). */
export const FAST_SYMLINK_MAX = 60;
/** Bytes for extended attributes inside an inode, after i_extra_isize. */
export const INODE_XATTR_SPACE = INODE_SIZE - 128 - EXTRA_ISIZE;
