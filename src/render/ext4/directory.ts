import { ext4Crc } from './checksum.js';
import { BLOCK_SIZE } from './constants.js';

/** One name in a directory. */
export interface DirEntrySpec {
  readonly name: Buffer;
  readonly ino: number;
  /** Directory entry file type (FT). */
  readonly type: number;
}

/** Leaf blocks end with a 12-byte fake entry holding the block's checksum (metadata_csum). */
const TAIL = 12;
const USABLE = BLOCK_SIZE - TAIL;

function entrySize(nameLength: number): number {
  return (8 + nameLength + 3) & ~3;
}

/**
 * Splits a directory's entries (already in their final order) into blocks:
 * "." and ".." open the first block, every block is filled in order. The
 * same entries always give the same blocks.
 */
export function packDirectory(entries: readonly DirEntrySpec[]): DirEntrySpec[][] {
  const blocks: DirEntrySpec[][] = [[]];
  let used = entrySize(1) + entrySize(2);
  for (const e of entries) {
    const n = entrySize(e.name.length);
    if (used + n > USABLE) {
      blocks.push([]);
      used = 0;
    }
    blocks[blocks.length - 1]!.push(e);
    used += n;
  }
  return blocks;
}

function put(
  buf: Buffer,
  at: number,
  ino: number,
  recLen: number,
  name: Buffer,
  type: number,
): void {
  buf.writeUInt32LE(ino, at);
  buf.writeUInt16LE(recLen, at + 4);
  buf.writeUInt8(name.length, at + 6);
  buf.writeUInt8(type, at + 7);
  name.copy(buf, at + 8);
}

/** Encodes packed directory blocks of inode `ino` (parent `parent`) with their checksums. */
export function encodeDirectory(
  blocks: readonly (readonly DirEntrySpec[])[],
  ino: number,
  parent: number,
  seed: number,
): Buffer[] {
  return blocks.map((entries, index) => {
    const buf = Buffer.alloc(BLOCK_SIZE);
    const all: DirEntrySpec[] =
      index === 0
        ? [
            { name: Buffer.from('.'), ino, type: 2 },
            { name: Buffer.from('..'), ino: parent, type: 2 },
            ...entries,
          ]
        : [...entries];
    let at = 0;
    if (all.length === 0) {
      // An empty continuation block: one unused entry spanning it.
      put(buf, 0, 0, USABLE, Buffer.alloc(0), 0);
    }
    all.forEach((e, i) => {
      const size = i === all.length - 1 ? USABLE - at : entrySize(e.name.length);
      put(buf, at, e.ino, size, e.name, e.type);
      at += size;
    });
    // The tail: inode 0, rec_len 12, name_len 0, type 0xde, then the checksum.
    buf.writeUInt32LE(0, USABLE);
    buf.writeUInt16LE(TAIL, USABLE + 4);
    buf.writeUInt8(0, USABLE + 6);
    buf.writeUInt8(0xde, USABLE + 7);
    buf.writeUInt32LE(ext4Crc(seed, buf.subarray(0, USABLE)), USABLE + 8);
    return buf;
  });
}
