import { FerryError } from '../../errors/index.js';
import type { DirEntry, FsDriver, FsType, NodeStat } from './fs-driver.js';
import type { Xattr } from './xattr-list.js';

/** Caps on walking a hostile filesystem. */
export const FS_LIMITS = {
  /** Symlinks followed while resolving one path (Linux: 40). */
  maxSymlinkHops: 40,
  /** Path components walked while resolving one path. */
  maxComponents: 512,
  /** Bytes of one symlink target. */
  maxLinkBytes: 4096,
  /** Entries listed from one directory. */
  maxDirEntries: 100_000,
  /** Default cap on bytes read from one file (config files, kernel headers). */
  defaultMaxFileBytes: 4 * 1024 * 1024,
} as const;

export interface ResolvedNode<R> {
  readonly path: string;
  readonly ref: R;
  readonly stat: NodeStat;
}

function split(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Path-level, read-only access to a filesystem driver. Absolute symlinks are
 * resolved against this filesystem's root, never the host's; ".." stops at
 * the root; every walk is capped.
 */
export class FsTree<R = unknown> {
  readonly driver: FsDriver<R>;

  constructor(driver: FsDriver<R>) {
    this.driver = driver;
  }

  get type(): FsType {
    return this.driver.type;
  }

  /**
   * Resolves `path` to a node. Intermediate symlinks are always followed; the
   * last component is followed when `follow` is true. Returns null when a
   * component does not exist.
   */
  async resolve(path: string, follow = true): Promise<ResolvedNode<R> | null> {
    const root = await this.driver.root();
    let stack: Array<{ name: string; ref: R }> = [];
    let pending = split(path);
    let hops = 0;
    let steps = 0;
    let current: R = root;
    while (pending.length > 0) {
      if (++steps > FS_LIMITS.maxComponents) {
        throw new FerryError(
          'FERRY_FS_LIMIT',
          `Cannot resolve ${path}: more than ${FS_LIMITS.maxComponents} components`,
          {
            details: { path },
          },
        );
      }
      const name = pending.shift()!;
      if (name === '..') {
        stack.pop();
        current = stack.at(-1)?.ref ?? root;
        continue;
      }
      const dirStat = await this.driver.stat(current);
      if (dirStat.kind !== 'dir') {
        throw new FerryError(
          'FERRY_FS_NOT_A_DIRECTORY',
          `Cannot resolve ${path}: a component is not a directory`,
          {
            details: { path },
          },
        );
      }
      const ref = await this.driver.lookup(current, name);
      if (ref === null) return null;
      const st = await this.driver.stat(ref);
      const last = pending.length === 0;
      if (st.kind === 'symlink' && (!last || follow)) {
        if (++hops > FS_LIMITS.maxSymlinkHops) {
          throw new FerryError(
            'FERRY_FS_SYMLINK_LOOP',
            `Cannot resolve ${path}: too many symlinks`,
            { details: { path } },
          );
        }
        const target = await this.readLinkRef(ref, st);
        if (target.startsWith('/')) {
          stack = [];
          current = root;
        }
        pending = [...split(target), ...pending];
        continue;
      }
      stack.push({ name, ref });
      current = ref;
    }
    const stat = await this.driver.stat(current);
    return { path: `/${stack.map((s) => s.name).join('/')}`, ref: current, stat };
  }

  async exists(path: string): Promise<boolean> {
    return (await this.resolve(path).catch(() => null)) !== null;
  }

  /** stat() following symlinks; null when missing. */
  async stat(path: string): Promise<NodeStat | null> {
    return (await this.resolve(path, true))?.stat ?? null;
  }

  /** lstat(); null when missing. */
  async lstat(path: string): Promise<NodeStat | null> {
    return (await this.resolve(path, false))?.stat ?? null;
  }

  /** The final path after resolving every symlink, or null. */
  async realpath(path: string): Promise<string | null> {
    return (await this.resolve(path, true))?.path ?? null;
  }

  /** Reads up to `maxBytes` of a file (following symlinks); null when missing or not a file. */
  async readFile(
    path: string,
    maxBytes: number = FS_LIMITS.defaultMaxFileBytes,
  ): Promise<Buffer | null> {
    const node = await this.resolve(path, true);
    if (node === null || node.stat.kind !== 'file') return null;
    return this.driver.readFile(node.ref, 0, Math.min(node.stat.size, maxBytes));
  }

  /** Reads a byte range of a file (following symlinks); null when missing or not a file. */
  async readRange(path: string, offset: number, length: number): Promise<Buffer | null> {
    const node = await this.resolve(path, true);
    if (node === null || node.stat.kind !== 'file') return null;
    const len = Math.max(0, Math.min(length, node.stat.size - offset));
    return this.driver.readFile(node.ref, offset, len);
  }

  /** Reads a file as text (UTF-8, invalid sequences replaced); null when missing. */
  async readText(
    path: string,
    maxBytes: number = FS_LIMITS.defaultMaxFileBytes,
  ): Promise<string | null> {
    const buf = await this.readFile(path, maxBytes);
    return buf === null ? null : buf.toString('utf8');
  }

  /** Lists a directory (following symlinks); null when missing or not a directory. */
  async readDir(
    path: string,
    limit: number = FS_LIMITS.maxDirEntries,
  ): Promise<DirEntry<R>[] | null> {
    const node = await this.resolve(path, true);
    if (node === null || node.stat.kind !== 'dir') return null;
    return this.driver.readDir(node.ref, Math.min(limit, FS_LIMITS.maxDirEntries));
  }

  /** The target of the symlink at `path`; null when missing or not a symlink. */
  async readLink(path: string): Promise<string | null> {
    const node = await this.resolve(path, false);
    if (node === null || node.stat.kind !== 'symlink') return null;
    return this.readLinkRef(node.ref, node.stat);
  }

  /**
   * The extended attributes at `path` (of a symlink itself unless `follow`);
   * null when missing, empty when the filesystem has none or ferry does not
   * read them for this filesystem.
   */
  async readXattrs(path: string, follow = false): Promise<readonly Xattr[] | null> {
    const node = await this.resolve(path, follow);
    if (node === null) return null;
    return this.driver.readXattrs === undefined ? [] : this.driver.readXattrs(node.ref);
  }

  private async readLinkRef(ref: R, st: NodeStat): Promise<string> {
    if (st.size > FS_LIMITS.maxLinkBytes) {
      throw new FerryError(
        'FERRY_FS_LIMIT',
        `Cannot read symlink: its target is ${st.size} bytes`,
        { details: { size: st.size } },
      );
    }
    return this.driver.readLink(ref);
  }
}
