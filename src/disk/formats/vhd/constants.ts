/**
 * Layout constants of Microsoft's VHD format ("Virtual Hard Disk Image Format
 * Specification" 1.0), qemu's "vpc" driver. Every field is big-endian.
 */

export const SECTOR = 512;
export const KiB = 1024;
export const MiB = 1024 * KiB;

/** The hard disk footer: at the end of every VHD, and also at offset 0 of a dynamic one. */
export const FOOTER_SIZE = 512;
export const FOOTER_COOKIE = 'conectix';
/** The dynamic disk header, found at the footer's data offset. */
export const HEADER_SIZE = 1024;
export const HEADER_COOKIE = 'cxsparse';
export const FORMAT_VERSION = 0x00010000;
export const HEADER_VERSION = 0x00010000;

/** Footer field offsets. */
export const F = {
  cookie: 0,
  features: 8,
  version: 12,
  dataOffset: 16,
  timestamp: 24,
  creatorApp: 28,
  creatorVersion: 32,
  creatorHost: 36,
  originalSize: 40,
  currentSize: 48,
  cylinders: 56,
  heads: 58,
  sectorsPerTrack: 59,
  diskType: 60,
  checksum: 64,
  uuid: 68,
  savedState: 84,
} as const;

/** Dynamic header field offsets. */
export const H = {
  cookie: 0,
  dataOffset: 8,
  tableOffset: 16,
  version: 24,
  maxTableEntries: 28,
  blockSize: 32,
  checksum: 36,
  parentUuid: 40,
} as const;

export const DISK_FIXED = 2;
export const DISK_DYNAMIC = 3;
export const DISK_DIFFERENCING = 4;

/** Footer feature bit 1 is reserved and must be set. */
export const FEATURES_RESERVED = 0x2;

/** A BAT entry for a block that is not stored. */
export const BAT_UNUSED = 0xffffffff;

/**
 * qemu's size cap: 0xff000000 sectors (2040 GiB). Disks this large cannot be
 * opened by qemu, and Azure's limit for page-blob VHDs is lower still.
 */
export const MAX_SECTORS = 0xff000000;
export const MAX_VIRTUAL_SIZE = MAX_SECTORS * SECTOR;

/**
 * The largest geometry the spec's algorithm yields (65535 x 16 x 255). qemu
 * takes a footer with exactly this geometry to mean "use current_size".
 */
export const MAX_CHS_SECTORS = 65535 * 16 * 255;

/** Creator applications whose images qemu sizes by CHS geometry rather than current_size. */
export const CHS_CREATORS: readonly string[] = ['vpc ', 'qemu'];
/**
 * Creator applications qemu (all versions since 2.5) sizes by current_size.
 * qemu before 10.0 used CHS for every creator not in this list.
 */
export const CURRENT_SIZE_CREATORS: readonly string[] = ['win ', 'qem2', 'd2v ', 'CTXS', 'tap\0'];

/** Seconds between the Unix epoch and the VHD epoch (2000-01-01T00:00:00Z). */
export const VHD_EPOCH = 946684800;

/**
 * Smallest dynamic block size ferry reads. qemu accepts 512 B and up, but for
 * blocks under 4 KiB its sector-bitmap size (block_size / 4096, rounded up to
 * a sector) is 0 where the spec's is 512, so qemu and spec readers would
 * place the data differently. No tool writes such blocks; ferry refuses them.
 */
export const MIN_BLOCK_SIZE = 4096;

/** Bytes of the sector bitmap in front of every stored block (spec and qemu agree for >= 4 KiB). */
export function bitmapSize(blockSize: number): number {
  return Math.ceil(blockSize / SECTOR / 8 / SECTOR) * SECTOR;
}
