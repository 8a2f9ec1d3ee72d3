import { FerryError } from '../../../errors/index.js';
import type { NodeKind } from '../fs-driver.js';
import { type ExtSuperblock, INCOMPAT, RO_COMPAT } from './superblock.js';

export const INODE_FLAGS = {
  encrypt: 0x800,
  index: 0x1000,
  hugeFile: 0x40000,
  extents: 0x80000,
  eaInode: 0x200000,
  inlineData: 0x10000000,
  casefold: 0x40000000,
} as const;

/** Bytes of i_block: 15 block pointers, an extent root, a fast symlink or inline data. */
export const I_BLOCK_SIZE = 60;

const S_IFMT = 0xf000;
const XATTR_MAGIC = 0xea020000;
/** The "system." attribute name prefix index; inline data lives in system.data. */
const XATTR_INDEX_SYSTEM = 7;

export interface ExtInode {
  readonly ino: number;
  /** The full i_mode (type and permission bits). */
  readonly mode: number;
  readonly kind: NodeKind;
  readonly flags: number;
  readonly size: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  /** Nanoseconds within the second (from i_mtime_extra), 0 without extra fields. */
  readonly mtimeNsec: number;
  readonly links: number;
  /** i_blocks in 512-byte units, without the extended-attribute block. */
  readonly dataSectors: number;
  /** A copy of the 60 bytes of i_block. */
  readonly iblock: Buffer;
  /** For inline-data inodes: the bytes after i_block (the system.data attribute), else null. */
  readonly inlineTail: Buffer | null;
}

function corrupt(ino: number, message: string, details: Record<string, number> = {}): FerryError {
  return new FerryError('FERRY_FS_CORRUPT', `Cannot read ext inode ${ino}: ${message}`, {
    details: { inode: ino, ...details },
  });
}

function kindOf(mode: number): NodeKind {
  switch (mode & S_IFMT) {
    case 0x8000:
      return 'file';
    case 0x4000:
      return 'dir';
    case 0xa000:
      return 'symlink';
    default:
      return 'other';
  }
}

/**
 * Finds the system.data attribute in the in-inode extended attribute area
 * [start, raw.length). Returns its value, or null when the area holds none.
 */
function findInlineDataAttr(ino: number, raw: Buffer, start: number): Buffer | null {
  const end = raw.length;
  if (start + 4 > end || raw.readUInt32LE(start) !== XATTR_MAGIC) return null;
  const first = start + 4;
  let pos = first;
  // Each entry takes at least 16 bytes, so this loop is bounded by the inode size.
  while (pos + 4 <= end && raw.readUInt32LE(pos) !== 0) {
    if (pos + 16 > end) throw corrupt(ino, 'an extended attribute entry is truncated');
    const nameLen = raw[pos]!;
    const nameIndex = raw[pos + 1]!;
    const valueOffs = raw.readUInt16LE(pos + 2);
    const valueInum = raw.readUInt32LE(pos + 4);
    const valueSize = raw.readUInt32LE(pos + 8);
    const entryLen = (16 + nameLen + 3) & ~3;
    if (pos + entryLen > end) throw corrupt(ino, 'an extended attribute name overruns the inode');
    if (
      nameIndex === XATTR_INDEX_SYSTEM &&
      nameLen === 4 &&
      raw.toString('latin1', pos + 16, pos + 20) === 'data'
    ) {
      if (valueInum !== 0) throw corrupt(ino, 'its inline data is stored in another inode');
      if (valueSize === 0) return Buffer.alloc(0);
      if (first + valueOffs + valueSize > end) {
        throw corrupt(ino, 'its inline data attribute overruns the inode', {
          valueOffs,
          valueSize,
        });
      }
      return Buffer.from(raw.subarray(first + valueOffs, first + valueOffs + valueSize));
    }
    pos += entryLen;
  }
  return null;
}

/** Decodes one on-disk inode (`raw` is s_inode_size bytes). */
export function parseInode(sb: ExtSuperblock, ino: number, raw: Buffer): ExtInode {
  const mode = raw.readUInt16LE(0x00);
  if ((mode & S_IFMT) === 0) throw corrupt(ino, 'it is not in use (mode 0)');
  const kind = kindOf(mode);
  const flags = raw.readUInt32LE(0x20);
  const sizeLo = raw.readUInt32LE(0x04);
  const sizeHi = raw.readUInt32LE(0x6c);
  const useHigh = kind === 'file' || (sb.incompat & INCOMPAT.largedir) !== 0;
  if (useHigh && sizeHi >= 2 ** 21) throw corrupt(ino, 'its size exceeds 2^53 bytes', { sizeHi });
  const size = useHigh ? sizeHi * 2 ** 32 + sizeLo : sizeLo;

  let extra = 0;
  if (raw.length > 128) {
    extra = raw.readUInt16LE(0x80);
    if (128 + extra > raw.length || extra % 4 !== 0) {
      throw corrupt(ino, 'its extra inode size is invalid', { extraIsize: extra });
    }
  }
  let mtime = raw.readInt32LE(0x10);
  let mtimeNsec = 0;
  if (extra >= 0x0c) {
    const mextra = raw.readUInt32LE(0x88);
    mtime += (mextra & 3) * 2 ** 32;
    mtimeNsec = Math.min(999_999_999, mextra >>> 2);
  }

  const huge = (sb.roCompat & RO_COMPAT.hugeFile) !== 0;
  let sectors = raw.readUInt32LE(0x1c) + (huge ? raw.readUInt16LE(0x74) * 2 ** 32 : 0);
  if (huge && flags & INODE_FLAGS.hugeFile) sectors *= sb.blockSize / 512;
  const fileAcl = raw.readUInt32LE(0x68) + raw.readUInt16LE(0x76) * 2 ** 32;
  if (fileAcl !== 0) sectors = Math.max(0, sectors - sb.clusterSize / 512);

  let inlineTail: Buffer | null = null;
  if (flags & INODE_FLAGS.inlineData) {
    if (!(sb.incompat & INCOMPAT.inlineData)) {
      throw corrupt(ino, 'it has inline data but the filesystem does not enable inline_data');
    }
    inlineTail = findInlineDataAttr(ino, raw, 128 + extra);
    if (inlineTail === null) throw corrupt(ino, 'its inline data attribute is missing');
    if (kind !== 'dir' && size > I_BLOCK_SIZE + inlineTail.length) {
      throw corrupt(ino, 'its size is larger than its inline data', {
        size,
        inline: I_BLOCK_SIZE + inlineTail.length,
      });
    }
  }

  return {
    ino,
    mode,
    kind,
    flags,
    size,
    uid: raw.readUInt16LE(0x02) + raw.readUInt16LE(0x78) * 65536,
    gid: raw.readUInt16LE(0x18) + raw.readUInt16LE(0x7a) * 65536,
    mtime,
    mtimeNsec,
    links: raw.readUInt16LE(0x1a),
    dataSectors: sectors,
    iblock: Buffer.from(raw.subarray(0x28, 0x28 + I_BLOCK_SIZE)),
    inlineTail,
  };
}

/** The bytes of an inline-data inode: i_block followed by the system.data value. */
export function inlineBytes(inode: ExtInode): Buffer {
  return Buffer.concat([inode.iblock, inode.inlineTail ?? Buffer.alloc(0)]);
}
