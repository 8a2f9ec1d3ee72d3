import type { DirEntry, FsDriver, NodeStat } from '../../src/inspect/fs/fs-driver.js';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';

/** A test tree: strings/Buffers are files, objects are directories, { link } is a symlink. */
export type MemNode =
  | string
  | Buffer
  | { readonly link: string }
  | { readonly [name: string]: MemNode };

function isLink(n: MemNode): n is { link: string } {
  return (
    typeof n === 'object' &&
    !Buffer.isBuffer(n) &&
    typeof (n as { link?: unknown }).link === 'string'
  );
}

/** An in-memory FsDriver, to test path logic and OS detection without building images. */
export function memFs(tree: { [name: string]: MemNode }): FsTree<MemNode> {
  const driver: FsDriver<MemNode> = {
    type: 'ext4',
    caseInsensitive: false,
    root: async () => tree,
    stat: async (n): Promise<NodeStat> => {
      const base = { mode: null, uid: null, gid: null, mtime: null };
      if (typeof n === 'string') return { kind: 'file', size: Buffer.byteLength(n), ...base };
      if (Buffer.isBuffer(n)) return { kind: 'file', size: n.length, ...base };
      if (isLink(n)) return { kind: 'symlink', size: n.link.length, ...base };
      return { kind: 'dir', size: 0, ...base };
    },
    lookup: async (dir, name) => {
      if (typeof dir !== 'object' || Buffer.isBuffer(dir) || isLink(dir)) return null;
      return Object.hasOwn(dir, name) ? (dir as Record<string, MemNode>)[name]! : null;
    },
    readDir: async (dir, limit): Promise<DirEntry<MemNode>[]> =>
      Object.entries(dir as Record<string, MemNode>)
        .slice(0, limit)
        .map(([name, ref]) => ({ name, ref })),
    readFile: async (n, offset, length) => {
      const b = typeof n === 'string' ? Buffer.from(n) : (n as Buffer);
      return Buffer.from(b.subarray(offset, offset + length));
    },
    readLink: async (n) => (n as { link: string }).link,
  };
  return new FsTree(driver);
}
