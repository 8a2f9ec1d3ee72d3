import type { Manifest, ManifestEntry } from '../../store/index.js';
import { BLOCK_SIZE, CHUNK_BLOCKS, FTYPE, INODES_PER_CHUNK, LOG_BLOCKS } from './constants.js';
import { input, limit } from './plan-errors.js';
import { toXfsXattrs, type XfsXattr } from './xattr.js';
import type { MapRun } from './xfs-map.js';

/** One inode of the tree: a manifest entry (hard links share their first path's) and what the planner decides for it. */
export interface Node {
  readonly path: string;
  readonly entry: ManifestEntry;
  ino: number;
  parent: Node | null;
  nlink: number;
  subdirs: number;
  readonly children: { readonly name: Buffer; readonly node: Node; readonly ftype: number }[];
  readonly xattrs: XfsXattr[];
  /** With a base: the file's data runs kept where they are, and whether its bytes are rewritten there. */
  keep: { readonly runs: readonly MapRun[]; readonly rewrite: boolean } | null;
}

export function prepareNodes(manifest: Manifest): Node[] {
  const entries = manifest.entries;
  if (entries[0]?.path !== '' || entries[0].type !== 'dir')
    throw input('the revision has no root directory');
  const byPath = new Map<string, Node>();
  const nodes: Node[] = [];
  const parentOf = (p: string): Node => {
    const i = p.lastIndexOf('/');
    const parent = byPath.get(i < 0 ? '' : p.slice(0, i));
    if (parent === undefined || parent.entry.type !== 'dir' || parent.path === p)
      throw input(`${p} has no parent directory`);
    return parent;
  };
  const nameOf = (p: string): Buffer => {
    const n = Buffer.from(p.slice(p.lastIndexOf('/') + 1));
    if (n.length > 255) throw limit(`the name of ${p} is longer than 255 bytes`);
    return n;
  };
  for (const e of entries) {
    if (e.link !== undefined) {
      const primary = byPath.get(e.link);
      if (primary === undefined || primary.entry.type !== 'file')
        throw input(`${e.path} links to a missing file`);
      primary.nlink++;
      byPath.set(e.path, primary);
      parentOf(e.path).children.push({ name: nameOf(e.path), node: primary, ftype: FTYPE.file });
      continue;
    }
    const n: Node = {
      path: e.path,
      entry: e,
      ino: 0,
      parent: null,
      nlink: 1,
      subdirs: 0,
      children: [],
      xattrs: toXfsXattrs(e.xattrs),
      keep: null,
    };
    if (e.path !== '') {
      const parent = parentOf(e.path);
      n.parent = parent;
      parent.children.push({ name: nameOf(e.path), node: n, ftype: FTYPE[e.type] });
      if (e.type === 'dir') parent.subdirs++;
    }
    byPath.set(e.path, n);
    nodes.push(n);
  }
  return nodes;
}

/** Blocks the tree takes, roughly: what the first geometry is sized for. */
export function estimate(nodes: readonly Node[]): number {
  let blocks = LOG_BLOCKS + Math.ceil((nodes.length + 3) / INODES_PER_CHUNK) * CHUNK_BLOCKS;
  for (const n of nodes) {
    const e = n.entry;
    if (e.type === 'file') blocks += Math.ceil(e.size / BLOCK_SIZE);
    else if (e.type === 'dir')
      blocks += Math.ceil(n.children.reduce((s, c) => s + 16 + c.name.length, 0) / 3000);
    if (n.xattrs.length > 0) blocks += 1;
  }
  return blocks;
}
