import { ext4Crc, inodeSeed } from './checksum.js';
import { EXTRA_ISIZE, INODE_SIZE } from './constants.js';

/** A time as ext4 keeps it: seconds (signed, 34 bits with the epoch bits) and nanoseconds. */
export interface Ext4Time {
  readonly sec: number;
  readonly nsec: number;
}

/** Everything one inode holds. */
export interface InodeFields {
  /** Type and permission bits. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly links: number;
  readonly time: Ext4Time;
  readonly flags: number;
  /** The 60 bytes of i_block: extent root, fast symlink target or device number. */
  readonly iBlock: Buffer;
  /** Blocks the inode owns (data, extent tree, xattr block), in 4 KiB units. */
  readonly blocks: number;
  /** Extended attribute block, or 0. */
  readonly xattrBlock: number;
  /** The in-inode extended attribute area (from its magic on), or null. */
  readonly inlineXattrs: Buffer | null;
}

/** Splits nanoseconds since the epoch (a decimal string) into an ext4 time. */
export function ext4Time(ns: string): Ext4Time {
  const v = BigInt(ns);
  let sec = v / 1_000_000_000n;
  let rem = v % 1_000_000_000n;
  if (rem < 0n) {
    rem += 1_000_000_000n;
    sec -= 1n;
  }
  // ext4 holds 34-bit seconds: 1901-12-13 to 2446-05-10. Outside, clamp.
  const min = -(2n ** 31n);
  const max = 2n ** 34n - 2n ** 31n - 1n;
  if (sec < min) return { sec: Number(min), nsec: 0 };
  if (sec > max) return { sec: Number(max), nsec: 999_999_999 };
  return { sec: Number(sec), nsec: Number(rem) };
}

function writeTime(buf: Buffer, at: number, extraAt: number, t: Ext4Time): void {
  // Low 32 bits of the seconds, signed; the extra field carries the epoch bits and nanoseconds.
  const low = BigInt.asIntN(32, BigInt(t.sec));
  buf.writeInt32LE(Number(low), at);
  const epoch = Number((BigInt(t.sec) - low) >> 32n) & 3;
  buf.writeUInt32LE(((t.nsec << 2) | epoch) >>> 0, extraAt);
}

/** Encodes an inode (256 bytes, generation 0) with its checksum. */
export function encodeInode(f: InodeFields, ino: number, seed: number): Buffer {
  const b = Buffer.alloc(INODE_SIZE);
  b.writeUInt16LE(f.mode & 0xffff, 0x00);
  b.writeUInt16LE(f.uid & 0xffff, 0x02);
  b.writeUInt32LE(f.size % 2 ** 32, 0x04);
  writeTime(b, 0x08, 0x8c, f.time); // atime
  writeTime(b, 0x0c, 0x84, f.time); // ctime
  writeTime(b, 0x10, 0x88, f.time); // mtime
  b.writeUInt16LE(f.gid & 0xffff, 0x18);
  b.writeUInt16LE(f.links, 0x1a);
  const sectors = f.blocks * 8;
  b.writeUInt32LE(sectors % 2 ** 32, 0x1c);
  b.writeUInt32LE(f.flags >>> 0, 0x20);
  f.iBlock.copy(b, 0x28, 0, 60);
  b.writeUInt32LE(f.xattrBlock % 2 ** 32, 0x68);
  b.writeUInt32LE(Math.floor(f.size / 2 ** 32), 0x6c);
  b.writeUInt16LE(Math.floor(sectors / 2 ** 32), 0x74);
  b.writeUInt16LE(Math.floor(f.xattrBlock / 2 ** 32), 0x76);
  b.writeUInt16LE((f.uid >>> 16) & 0xffff, 0x78);
  b.writeUInt16LE((f.gid >>> 16) & 0xffff, 0x7a);
  b.writeUInt16LE(EXTRA_ISIZE, 0x80);
  writeTime(b, 0x90, 0x94, f.time); // crtime
  if (f.inlineXattrs !== null) f.inlineXattrs.copy(b, 128 + EXTRA_ISIZE);
  const crc = ext4Crc(inodeSeed(seed, ino, 0), b);
  b.writeUInt16LE(crc & 0xffff, 0x7c);
  b.writeUInt16LE(crc >>> 16, 0x82);
  return b;
}
