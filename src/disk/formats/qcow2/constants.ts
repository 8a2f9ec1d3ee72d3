/** qcow2 on-disk constants (docs/interop/qcow2.rst). All integers are big-endian. */

export const QCOW2_MAGIC = 0x514649fb;

/** Fixed header sizes: version 2 ends at byte 72, version 3 at least at 104. */
export const V2_HEADER_LENGTH = 72;
export const V3_MIN_HEADER_LENGTH = 104;
/** The v3 header ferry writes: 104 bytes + compression_type + 7 bytes of padding. */
export const V3_WRITTEN_HEADER_LENGTH = 112;

export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
/** Extended L2 entries need clusters of at least 16 KiB. */
export const MIN_EXTENDED_L2_CLUSTER_BITS = 14;
export const MAX_REFCOUNT_ORDER = 6;

/** Incompatible feature bits. */
export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTENDED_L2 = 1n << 4n;
export const INCOMPAT_KNOWN = 0x1fn;

/** Compatible feature bits. */
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;

/** Header extension types. */
export const EXT_END = 0;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO_HEADER = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

export const COMPRESSION_DEFLATE = 0;
export const COMPRESSION_ZSTD = 1;

/** Compressed cluster data is addressed in 512-byte sectors. */
export const COMPRESSED_SECTOR = 512;

/** Subclusters per cluster with extended L2 entries. */
export const SUBCLUSTERS = 32;

/** Largest host offset an L1/L2 entry can hold (bits 9-55). */
export const MAX_HOST_OFFSET = 2 ** 56;
