/** VDI (VirtualBox) on-disk constants. All integers are little-endian. */

export const MiB = 1024 * 1024;

/** The header sector: 64-byte text preamble, signature, version, then the v1.1 header. */
export const HEADER_SECTOR = 512;
export const SECTOR_SIZE = 512;

export const VDI_SIGNATURE = 0xbeda107f;
export const VDI_VERSION_1_1 = 0x00010001;

/** The only block size ferry (like qemu) reads. */
export const VDI_BLOCK_SIZE = MiB;
/** qemu's cap on blocks_in_image (the block map must stay under 4 GiB). */
export const VDI_MAX_BLOCKS = 0x3fffffff;

/** Block map entry: never allocated (reads as zeros when there is no parent). */
export const BLOCK_UNALLOCATED = 0xffffffff;
/** Block map entry: discarded, reads as zeros. */
export const BLOCK_DISCARDED = 0xfffffffe;

export const IMAGE_TYPE = { dynamic: 1, static: 2, undo: 3, diff: 4 } as const;

/** Byte offsets of the header fields. */
export const OFF = {
  signature: 0x40,
  version: 0x44,
  headerSize: 0x48,
  imageType: 0x4c,
  imageFlags: 0x50,
  description: 0x54,
  offsetBmap: 0x154,
  offsetData: 0x158,
  cylinders: 0x15c,
  heads: 0x160,
  sectors: 0x164,
  sectorSize: 0x168,
  diskSize: 0x170,
  blockSize: 0x178,
  blockExtra: 0x17c,
  blocksInImage: 0x180,
  blocksAllocated: 0x184,
  uuidImage: 0x188,
  uuidLastSnap: 0x198,
  uuidLink: 0x1a8,
  uuidParent: 0x1b8,
} as const;

/** Length of the description field. */
export const DESCRIPTION_BYTES = 256;
/** The v1.1 header starts after the preamble, signature and version (0x48). */
export const HEADER_START = 0x48;
/** Smallest v1.1 header_size (VirtualBox's VDIHEADER1); the 1.1+ variant adds LCHS geometry. */
export const MIN_HEADER_SIZE = 0x180;
