import { FerryError } from '../../../errors/index.js';
import type { NodeKind } from '../fs-driver.js';

/** One live directory entry. `name` is a view into the directory block. */
export interface RawDirent {
  readonly ino: number;
  readonly name: Buffer;
  /** The dirent file type (filetype feature), 0 when unknown. */
  readonly fileType: number;
}

export interface DirentFormat {
  /** The filetype feature: name_len is one byte followed by a type byte. */
  readonly filetype: boolean;
  readonly blockSize: number;
  readonly inodesCount: number;
}

const FILE_TYPES: readonly (NodeKind | null)[] = [
  null,
  'file',
  'dir',
  'other',
  'other',
  'other',
  'other',
  'symlink',
];

/** The kind a dirent file type names, or null when it does not say. */
export function direntKind(fileType: number): NodeKind | null {
  return FILE_TYPES[fileType] ?? null;
}

function corrupt(dir: number, message: string, details: Record<string, number>): FerryError {
  return new FerryError('FERRY_FS_CORRUPT', `Cannot read ext directory ${dir}: ${message}`, {
    details: { directory: dir, ...details },
  });
}

/** rec_len as stored; 64 KiB blocks encode lengths of 65536 and above specially. */
function recLen(raw: number, blockSize: number): number {
  if (blockSize < 65536) return raw;
  if (raw === 65535 || raw === 0) return 65536;
  return (raw & 65532) | ((raw & 3) << 16);
}

/**
 * Parses the directory entries tiling buf[start, end) (one directory block,
 * or an inline-data region), calling `visit` for each live entry until it
 * returns true. Checks each rec_len (at least 12 and the name's length,
 * 4-aligned, inside the region) and each inode number. Returns true when
 * `visit` stopped the walk. "." and ".." are reported like any other name;
 * an htree root's fake entries cover its index, so they parse as plain dirents.
 */
export function parseDirents(
  dir: number,
  fmt: DirentFormat,
  buf: Buffer,
  start: number,
  end: number,
  visit: (e: RawDirent) => boolean,
): boolean {
  let pos = start;
  while (pos < end) {
    if (pos + 8 > end) throw corrupt(dir, 'a directory entry is truncated', { offset: pos });
    const ino = buf.readUInt32LE(pos);
    const len = recLen(buf.readUInt16LE(pos + 4), fmt.blockSize);
    const nameLen = fmt.filetype ? buf[pos + 6]! : buf.readUInt16LE(pos + 6);
    const fileType = fmt.filetype ? buf[pos + 7]! : 0;
    if (len < 12 || len % 4 !== 0 || pos + len > end || 8 + nameLen > len) {
      throw corrupt(dir, 'a directory entry has an invalid record length', {
        offset: pos,
        recLen: len,
        nameLen,
      });
    }
    if (ino !== 0) {
      if (ino > fmt.inodesCount)
        throw corrupt(dir, 'an entry names an inode past the last', { inode: ino });
      if (nameLen === 0) throw corrupt(dir, 'an entry has an empty name', { offset: pos });
      const name = buf.subarray(pos + 8, pos + 8 + nameLen);
      if (name.includes(0x2f) || name.includes(0)) {
        throw corrupt(dir, 'an entry name contains "/" or NUL', { offset: pos });
      }
      if (visit({ ino, name, fileType })) return true;
    }
    pos += len;
  }
  return false;
}
