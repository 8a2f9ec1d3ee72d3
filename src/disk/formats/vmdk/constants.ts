/** VMDK on-disk constants (hosted sparse extents, little-endian, 512-byte sectors). */

export const SECTOR = 512;
/** "KDMV" as it appears in the first four bytes of a hosted sparse extent. */
export const SPARSE_MAGIC = 'KDMV';
export const HEADER_SIZE = 512;

/** Header flags. */
export const FLAG_VALID_NEWLINE = 0x1;
export const FLAG_REDUNDANT_GD = 0x2;
export const FLAG_ZEROED_GRAIN_GTE = 0x4;
export const FLAG_COMPRESSED = 0x10000;
export const FLAG_MARKERS = 0x20000;

export const COMPRESSION_NONE = 0;
export const COMPRESSION_DEFLATE = 1;

/** gdOffset value meaning "the grain directory is located through the footer". */
export const GD_AT_END = 0xffffffffffffffffn;

/** The four bytes at offset 73 that a text-mode transfer would mangle. */
export const NEWLINE_CHECK = Buffer.from('\n \r\n', 'latin1');
export const NEWLINE_CHECK_OFFSET = 73;

/** A grain table entry of 1 reads as zeros when FLAG_ZEROED_GRAIN_GTE is set. */
export const GTE_ZEROED = 1;

/** Metadata marker types (stream-optimized extents). */
export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;
/** A grain marker: u64 LBA, u32 compressed size, then the zlib stream. */
export const GRAIN_MARKER_HEADER = 12;

/** Largest grain qemu accepts: 0x200000 sectors (1 GiB). */
export const MAX_GRAIN_SECTORS = 0x200000;
/** Smallest grain ferry accepts: 8 sectors (4 KiB). */
export const MIN_GRAIN_SECTORS = 8;
export const MAX_GTES_PER_GT = 512;
/**
 * Largest grain ferry inflates: 4096 sectors (2 MiB). A compressed grain is
 * inflated whole to read any byte of it, so this bounds the memory a read
 * takes; real stream-optimized disks use 64 KiB grains.
 */
export const MAX_COMPRESSED_GRAIN_SECTORS = 4096;

/** What ferry writes: 64 KiB grains, 512-entry grain tables, as qemu-img and VMware. */
export const WRITE_GRAIN_SECTORS = 128;
export const WRITE_GTES_PER_GT = 512;
/** Sectors reserved for the embedded descriptor (qemu-img reserves 20). */
export const WRITE_DESCRIPTOR_SECTORS = 20;
/** Grain data starts at sector 128 (64 KiB), as in VMware and qemu-img stream files. */
export const WRITE_OVERHEAD_SECTORS = 128;
