import type { ManifestEntry } from '../store/index.js';

/** POSIX file-type bits of st_mode, as ext4 and XFS inodes store them. */
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFDIR = 0o040000;
export const S_IFBLK = 0o060000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** The file-type bits of each manifest entry type. */
export const TYPE_BITS = {
  file: S_IFREG,
  dir: S_IFDIR,
  symlink: S_IFLNK,
  char: S_IFCHR,
  block: S_IFBLK,
  fifo: S_IFIFO,
} as const satisfies Record<ManifestEntry['type'], number>;

/** An inode's mode: the entry's type bits and its permission bits (setuid, setgid, sticky included). */
export function modeOf(e: ManifestEntry): number {
  return TYPE_BITS[e.type] | (e.mode & 0o7777);
}
