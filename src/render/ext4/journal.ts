import { BLOCK_SIZE, JOURNAL_MAGIC } from './constants.js';

/**
 * Journal blocks for a filesystem of `blocks` blocks: e2fsprogs' default
 * sizes (4 MiB under 128 MiB, up to 1 GiB for the largest), so a kernel
 * sees the journal it would get from mke2fs.
 */
export function journalBlocksFor(blocks: number): number {
  if (blocks < 32768) return 1024;
  if (blocks < 256 * 1024) return 4096;
  if (blocks < 512 * 1024) return 8192;
  if (blocks < 4096 * 1024) return 16384;
  if (blocks < 8192 * 1024) return 32768;
  if (blocks < 16384 * 1024) return 65536;
  if (blocks < 32768 * 1024) return 131072;
  return 262144;
}

/** The JBD2 superblock (version 2, big-endian) of an empty, clean internal journal. */
export function journalSuperblock(blocks: number, uuid: Buffer): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  b.writeUInt32BE(JOURNAL_MAGIC, 0x00);
  b.writeUInt32BE(4, 0x04); // superblock v2
  b.writeUInt32BE(0, 0x08);
  b.writeUInt32BE(BLOCK_SIZE, 0x0c);
  b.writeUInt32BE(blocks, 0x10); // s_maxlen
  b.writeUInt32BE(1, 0x14); // s_first
  b.writeUInt32BE(1, 0x18); // s_sequence
  b.writeUInt32BE(0, 0x1c); // s_start: nothing to replay
  uuid.copy(b, 0x30);
  b.writeUInt32BE(1, 0x40); // s_nr_users
  return b;
}
