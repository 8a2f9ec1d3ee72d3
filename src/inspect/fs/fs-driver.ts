import type { Volume } from '../volume.js';
import type { Xattr } from './xattr-list.js';

/** Filesystems ferry detects. Only some have a reader (FsDriver). */
export type FsType =
  | 'ext2'
  | 'ext3'
  | 'ext4'
  | 'xfs'
  | 'btrfs'
  | 'vfat'
  | 'ntfs'
  | 'swap'
  | 'lvm2'
  | 'luks'
  | 'iso9660';

export type NodeKind = 'file' | 'dir' | 'symlink' | 'other';

export interface NodeStat {
  readonly kind: NodeKind;
  readonly size: number;
  /** POSIX mode bits where the filesystem has them (ext, XFS), else null. */
  readonly mode: number | null;
  readonly uid: number | null;
  readonly gid: number | null;
  /** Seconds since the epoch, or null. */
  readonly mtime: number | null;
  /** Nanoseconds since the epoch as a decimal string, where the filesystem keeps them. */
  readonly mtimeNs?: string;
  /** For kind 'other': what it is, where the filesystem says. */
  readonly special?: 'char' | 'block' | 'fifo' | 'socket';
  /** Device numbers of a char or block device. */
  readonly rdev?: { readonly major: number; readonly minor: number };
  /** Hard link count, where the filesystem keeps it. */
  readonly links?: number;
}

export interface DirEntry<R> {
  readonly name: string;
  readonly ref: R;
}

/**
 * The per-filesystem part of a read-only reader: inodes/records and single
 * directory lookups. Path walking, symlink resolution and all caps live in
 * FsTree, shared by every filesystem. `R` is the driver's node reference
 * (an inode number, an MFT record number, a FAT directory entry...).
 *
 * Drivers treat the volume as hostile: every structure is bounds-checked,
 * every loop is capped, and a problem is a FerryError (FERRY_FS_CORRUPT or
 * FERRY_FS_LIMIT), never a TypeError or a hang.
 */
export interface FsDriver<R = unknown> {
  readonly type: FsType;
  /** Names compare case-insensitively (vfat, NTFS). */
  readonly caseInsensitive: boolean;
  root(): Promise<R>;
  stat(ref: R): Promise<NodeStat>;
  /** Looks up one name in a directory; null when absent. */
  lookup(dir: R, name: string): Promise<R | null>;
  /** Lists a directory, at most `limit` entries (without "." and ".."). */
  readDir(dir: R, limit: number): Promise<DirEntry<R>[]>;
  /** Reads file bytes [offset, offset+length) (clipped to the file size); sparse ranges read as zeros. */
  readFile(ref: R, offset: number, length: number): Promise<Buffer>;
  /** The target of a symlink, as stored. */
  readLink(ref: R): Promise<string>;
  /**
   * The extended attributes of a node (never following a symlink), sorted by
   * name, named and encoded as llistxattr / lgetxattr would give them on a
   * mounted copy: namespace prefixes spelled out, POSIX ACLs in the VFS
   * form, attributes the kernel hides (ext4's system.data) left out. Capped
   * by XATTR_LIMITS. Drivers of filesystems without them leave this out.
   */
  readXattrs?(ref: R): Promise<readonly Xattr[]>;
}

/** Opens a filesystem reader over a volume, or returns null when the bytes are not this filesystem. */
export type FsOpener = (volume: Volume) => Promise<FsDriver | null>;
