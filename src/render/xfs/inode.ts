import { FerryError } from '../../errors/index.js';
import { setCrc } from './checksum.js';
import { FMT_EXTENTS, INODE_CORE, INODE_SIZE, LITERAL_SIZE, MAGIC } from './constants.js';

/**
 * A timestamp as a bigtime inode keeps it: nanoseconds since 1901-12-13
 * (2^31 seconds before the epoch), unsigned 64 bits, good until 2486.
 */
export type XfsTime = bigint;

const BIGTIME_OFFSET = 2n ** 31n * 1_000_000_000n;
const BIGTIME_MAX = 2n ** 64n - 1n;

/** A manifest mtime (nanoseconds since the epoch, decimal) as an inode timestamp. */
export function xfsTime(ns: string, path: string): XfsTime {
  const t = BigInt(ns) + BIGTIME_OFFSET;
  if (t < 0n || t > BIGTIME_MAX)
    throw new FerryError(
      'FERRY_RENDER_LIMIT',
      `Cannot lay out ${path || '/'}: its mtime is outside what XFS holds (1901 to 2486)`,
    );
  return t;
}

/** di_flags2: the inode's timestamps are bigtime ones. */
const FLAG2_BIGTIME = 0x8n;

export interface InodeFields {
  readonly ino: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly time: XfsTime;
  readonly size: number;
  /** Blocks the inode owns: data, attribute and btree blocks. */
  readonly nblocks: number;
  readonly format: number;
  readonly nextents: number;
  /** The data fork bytes (at most the literal area, or forkoff * 8 with an attribute fork). */
  readonly dataFork: Buffer;
  /** The attribute fork: its format, extents and bytes, and forkoff (8-byte units); none when null. */
  readonly attr: {
    readonly forkoff: number;
    readonly format: number;
    readonly nextents: number;
    readonly fork: Buffer;
  } | null;
  readonly generation: number;
}

function putTime(b: Buffer, at: number, t: XfsTime): void {
  b.writeBigUInt64BE(t, at);
}

/** A v3 inode: core, data fork, attribute fork, CRC. */
export function encodeInode(f: InodeFields, uuid: Buffer): Buffer {
  const b = Buffer.alloc(INODE_SIZE);
  b.writeUInt16BE(MAGIC.inode, 0);
  b.writeUInt16BE(f.mode, 2);
  b[4] = 3;
  b[5] = f.format;
  b.writeUInt32BE(f.uid, 8);
  b.writeUInt32BE(f.gid, 12);
  b.writeUInt32BE(f.nlink, 16);
  putTime(b, 32, f.time); // atime
  putTime(b, 40, f.time); // mtime
  putTime(b, 48, f.time); // ctime
  b.writeBigUInt64BE(BigInt(f.size), 56);
  b.writeBigUInt64BE(BigInt(f.nblocks), 64);
  b.writeUInt32BE(f.nextents, 76);
  const dataEnd = f.attr === null ? LITERAL_SIZE : f.attr.forkoff * 8;
  if (f.dataFork.length > dataEnd)
    throw new FerryError(
      'FERRY_INTERNAL',
      `Cannot lay out inode ${f.ino}: its data fork overflows`,
    );
  b[83] = FMT_EXTENTS; // an absent attribute fork still says "extents"
  if (f.attr !== null) {
    b.writeUInt16BE(f.attr.nextents, 80);
    b[82] = f.attr.forkoff;
    b[83] = f.attr.format;
    f.attr.fork.copy(b, INODE_CORE + dataEnd);
  }
  b.writeUInt32BE(f.generation >>> 0, 92);
  b.writeUInt32BE(0xffffffff, 96); // next_unlinked
  b.writeBigUInt64BE(1n, 104); // change count
  b.writeBigUInt64BE(FLAG2_BIGTIME, 120);
  putTime(b, 144, f.time); // crtime
  b.writeBigUInt64BE(BigInt(f.ino), 152);
  uuid.copy(b, 160);
  f.dataFork.copy(b, INODE_CORE);
  setCrc(b, 100);
  return b;
}

/** An unused inode in an allocated chunk: just its identity, as mkfs.xfs leaves one. */
export function encodeFreeInode(ino: number, uuid: Buffer): Buffer {
  const b = Buffer.alloc(INODE_SIZE);
  b.writeUInt16BE(MAGIC.inode, 0);
  b[4] = 3;
  b.writeUInt32BE(0xffffffff, 96);
  b.writeBigUInt64BE(BigInt(ino), 152);
  uuid.copy(b, 160);
  setCrc(b, 100);
  return b;
}
