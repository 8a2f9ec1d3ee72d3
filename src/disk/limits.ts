/**
 * Safety caps on what an image may ask ferry to allocate or walk. Every
 * table read from an image is checked against these before any allocation.
 */
export const LIMITS = {
  /** Largest offset or size ferry accepts: JS numbers are exact to 2^53. */
  maxSafeOffset: Number.MAX_SAFE_INTEGER,
  /** Largest virtual disk: 64 TiB (qcow2's practical max, VHDX's 64 TiB). */
  maxVirtualSize: 64 * 1024 ** 4,
  /** qcow2 L1 table, as qemu: 32 MiB. */
  maxQcow2L1Bytes: 32 * 1024 * 1024,
  /** qcow2 refcount table, as qemu: 8 MiB. */
  maxQcow2RefcountTableBytes: 8 * 1024 * 1024,
  /** qcow2 snapshots, as qemu. */
  maxQcow2Snapshots: 65536,
  /** VMDK grain directory entries, as qemu: 32 Mi. */
  maxVmdkGdEntries: 32 * 1024 * 1024,
  /** VMDK embedded or standalone descriptor: 1 MiB. */
  maxVmdkDescriptorBytes: 1024 * 1024,
  /** VHD / VHDX / VDI block tables: 64 MiB of entries. */
  maxBlockTableBytes: 64 * 1024 * 1024,
  /** VHDX region table and metadata entries, per spec. */
  maxVhdxTableEntries: 2047,
  /** OVA members walked, and the OVF descriptor size. */
  maxOvaMembers: 1024,
  maxOvfBytes: 4 * 1024 * 1024,
  /** Bytes of parsed metadata tables a reader caches (L2 tables, grain tables). */
  maxTableCacheBytes: 32 * 1024 * 1024,
} as const;

/** Bytes detection reads from the start of an image. */
export const PROBE_HEAD_BYTES = 64 * 1024;

/** Converter write granularity; see DiskWriter. */
export const WRITE_CHUNK = 2 * 1024 * 1024;
