import { FerryError } from '../../../errors/index.js';
import type { NodeKind } from '../fs-driver.js';
import { type ExtSuperblock, INCOMPAT, RO_COMPAT } from './superblock.js';
import {
  EXT_XATTR_MAGIC,
  type ExtXattrTable,
  parseXattrEntries,
  xattrValue,
} from './xattr-entries.js';

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
/** The "system." attribute name prefix index; inline data lives in system.data. */
export const XATTR_INDEX_SYSTEM = 7;

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
  /** The in-inode extended attribute area (from its magic to the end of the inode), or null. */
  readonly ibodyXattrs: Buffer | null;
  /** The block holding more extended attributes (i_file_acl), or 0. */
  readonly fileAcl: number;
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
 * The in-inode extended attribute area: the bytes after the extra fields,
 * when they start with the attribute magic. Null when there is none.
 */
function ibodyXattrArea(raw: Buffer, start: number): Buffer | null {
  if (start + 4 > raw.length || raw.readUInt32LE(start) !== EXT_XATTR_MAGIC) return null;
  return Buffer.from(raw.subarray(start));
}

/** The table of an in-inode attribute area (after its 4-byte magic); values are relative to its first entry. */
export function ibodyXattrTable(
  area: Buffer,
  fail: (reason: string) => Error,
): { table: ExtXattrTable; base: number } {
  return { table: parseXattrEntries(area, 4, area.length, fail), base: 4 };
}

/** The value of the system.data attribute in an in-inode area, or null when the area holds none. */
function findInlineDataAttr(ino: number, area: Buffer | null): Buffer | null {
  if (area === null) return null;
  const fail = (reason: string) => corrupt(ino, reason);
  const { table, base } = ibodyXattrTable(area, fail);
  for (const e of table.entries) {
    if (e.nameIndex !== XATTR_INDEX_SYSTEM || e.name.toString('latin1') !== 'data') continue;
    if (e.valueInum !== 0) throw corrupt(ino, 'its inline data is stored in another inode');
    if (e.valueSize > area.length) {
      throw corrupt(ino, 'its inline data attribute overruns the inode', {
        valueOffs: e.valueOffs,
        valueSize: e.valueSize,
      });
    }
    return Buffer.from(xattrValue(area, table, e, base, area.length, fail));
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
  // i_file_acl_high counts only on 64-bit filesystems, as in the kernel.
  const aclHigh = sb.incompat & INCOMPAT.is64bit ? raw.readUInt16LE(0x76) : 0;
  const fileAcl = raw.readUInt32LE(0x68) + aclHigh * 2 ** 32;
  if (fileAcl !== 0) sectors = Math.max(0, sectors - sb.clusterSize / 512);

  const ibodyXattrs = raw.length > 128 ? ibodyXattrArea(raw, 128 + extra) : null;
  let inlineTail: Buffer | null = null;
  if (flags & INODE_FLAGS.inlineData) {
    if (!(sb.incompat & INCOMPAT.inlineData)) {
      throw corrupt(ino, 'it has inline data but the filesystem does not enable inline_data');
    }
    inlineTail = findInlineDataAttr(ino, ibodyXattrs);
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
    ibodyXattrs,
    fileAcl,
  };
}

/** The bytes of an inline-data inode: i_block followed by the system.data value. */
export function inlineBytes(inode: ExtInode): Buffer {
  return Buffer.concat([inode.iblock, inode.inlineTail ?? Buffer.alloc(0)]);
}
