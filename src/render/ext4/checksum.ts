import { crc32c } from '../../util/crc32c.js';

/**
 * ext4's metadata checksums are CRC-32C without the final inversion, chained
 * from a seed: ext4Crc(seed, data) is the kernel's crc32c(seed, data).
 * `crc32c` in util is the standard form (inverted in and out), hence the ~s.
 */
export function ext4Crc(seed: number, data: Uint8Array): number {
  return ~crc32c(data, ~seed >>> 0) >>> 0;
}

function le32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** The filesystem's checksum seed: crc of the UUID from ~0. */
export function fsSeed(uuid: Buffer): number {
  return ext4Crc(0xffffffff, uuid);
}

/** Per-inode seed (extent blocks, directory blocks, the inode itself): fs seed, inode number, generation. */
export function inodeSeed(fs: number, ino: number, generation: number): number {
  return ext4Crc(ext4Crc(fs, le32(ino)), le32(generation));
}

export function groupSeed(fs: number, group: number): number {
  return ext4Crc(fs, le32(group));
}

/** Seed of an extended attribute block: fs seed and the block's 64-bit number. */
export function xattrBlockSeed(fs: number, block: number): number {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(block));
  return ext4Crc(fs, b);
}
