import type { FileRegion } from '../ext4/plan-ext4.js';
import type { BlockRun, XfsAllocator } from './allocator.js';
import { bmbtBlocks, type Extent, encodeFork, toExtents } from './bmap.js';
import { setCrc } from './checksum.js';
import {
  BLOCK_SIZE,
  FMT_BTREE,
  FMT_DEV,
  FMT_EXTENTS,
  FMT_LOCAL,
  LITERAL_SIZE,
  MAGIC,
  SYMLINK_MAX,
} from './constants.js';
import {
  type DirEntrySpec,
  FREE_FIRST_BLOCK,
  LEAF_FIRST_BLOCK,
  layoutDirectory,
} from './directory.js';
import type { XfsGeometry } from './geometry.js';
import { input, limit } from './plan-errors.js';
import type { Node } from './tree-nodes.js';
import {
  attrLeafBlock,
  layoutAttrLeaf,
  REMOTE_ROOM,
  remoteValueBlocks,
  shortformAttrs,
} from './xattr.js';
import type { MapRun } from './xfs-map.js';

/**
 * Placing one inode: its attribute fork (short form, or a leaf and remote
 * value blocks), then its data: file runs (kept from a base or new),
 * directory blocks, a remote symlink block, a device number. Blocks come
 * from the allocator in manifest order; metadata blocks go to `meta`.
 */
/** The attribute fork's offset (8-byte units) when it holds extents: the kernel's default, 40 bytes for it. */
const ATTR_FORKOFF = 37;
/** A device's attribute fork offset: the 4-byte device number rounded up to 8 bytes. */
const DEVICE_FORKOFF = 1;

export interface Placed {
  node: Node;
  format: number;
  dataFork: Buffer;
  nextents: number;
  size: number;
  nblocks: number;
  attr: { forkoff: number; format: number; nextents: number; fork: Buffer } | null;
  /** A file's data runs, for the map. */
  runs?: MapRun[];
}

function runsToExtents(runs: readonly BlockRun[], firstLogical: number): Extent[] {
  const out: Extent[] = [];
  let logical = firstLogical;
  for (const r of runs) {
    out.push({ offset: logical, start: r.start, length: r.length });
    logical += r.length;
  }
  return toExtents(out);
}

/** Places one node's blocks and builds its forks (directory and symlink blocks go to `meta`). */
export function placeNode(
  n: Node,
  alloc: XfsAllocator,
  geo: XfsGeometry,
  uuid: Buffer,
  meta: Map<number, Buffer>,
  files: FileRegion[],
  /** The base's bytes are not at hand: kept files are listed to write too. */
  writeKept = false,
): Placed {
  const e = n.entry;
  // The attribute fork first: short form when it takes at most half the inode's literal area.
  let attr: Placed['attr'] = null;
  let attrBlocks = 0;
  if (n.xattrs.length > 0) {
    // The kernel wants a device's (or fifo's) attribute fork right after its 4-byte device number.
    const device = e.type === 'char' || e.type === 'block' || e.type === 'fifo';
    const forkoff = (sfBytes: number): number =>
      device ? DEVICE_FORKOFF : sfBytes <= LITERAL_SIZE / 2 ? (LITERAL_SIZE - sfBytes) / 8 : 0;
    const sf = shortformAttrs(n.xattrs);
    const sfBytes = sf === null ? Infinity : Math.ceil(sf.length / 8) * 8;
    const sfOff = forkoff(sfBytes);
    if (sf !== null && sfOff > 0 && sfBytes <= LITERAL_SIZE - sfOff * 8) {
      const fork = Buffer.alloc(LITERAL_SIZE - sfOff * 8);
      sf.copy(fork);
      attr = { forkoff: sfOff, format: FMT_LOCAL, nextents: 0, fork };
    } else {
      // A leaf block and remote value blocks, mapped by the fork's extents (a btree if need be).
      const layout = layoutAttrLeaf(n.xattrs, n.path);
      const linear = alloc
        .allocate(layout.blocks)
        .flatMap((r) => Array.from({ length: r.length }, (_, i) => r.start + i));
      meta.set(linear[0]!, attrLeafBlock(layout, n.ino, geo.daddr(linear[0]!), uuid));
      layout.xs.forEach((x, i) => {
        const at = layout.remoteAt[i]!;
        if (at < 0) return;
        const blocks = linear.slice(at, at + Math.max(1, Math.ceil(x.value.length / REMOTE_ROOM)));
        const bufs = remoteValueBlocks(
          x,
          n.ino,
          blocks.map((b) => geo.daddr(b)),
          uuid,
        );
        bufs.forEach((buf, k) => {
          meta.set(blocks[k]!, buf);
        });
      });
      const extents: Extent[] = [];
      linear.forEach((b, logical) => {
        const last = extents[extents.length - 1];
        if (last !== undefined && last.start + last.length === b)
          extents[extents.length - 1] = { ...last, length: last.length + 1 };
        else extents.push({ offset: logical, start: b, length: 1 });
      });
      const leafOff = device ? DEVICE_FORKOFF : ATTR_FORKOFF;
      const forkBytes = LITERAL_SIZE - leafOff * 8;
      const need = bmbtBlocks(extents.length, forkBytes);
      const bt =
        need === 0
          ? []
          : alloc
              .allocate(need)
              .flatMap((r) => Array.from({ length: r.length }, (_, i) => r.start + i));
      const enc = encodeFork(extents, forkBytes, bt, n.ino, geo, uuid);
      for (const [b, data] of enc.blocks) meta.set(b, data);
      attr = {
        forkoff: leafOff,
        format: enc.btree ? FMT_BTREE : FMT_EXTENTS,
        nextents: extents.length,
        fork: enc.fork,
      };
      attrBlocks = layout.blocks + bt.length;
    }
  }
  const forkBytes = attr === null ? LITERAL_SIZE : attr.forkoff * 8;
  const withExtents = (extents: Extent[], size: number, dataBlocks: number): Placed => {
    const need = bmbtBlocks(extents.length, forkBytes);
    const bt =
      need === 0
        ? []
        : alloc
            .allocate(need)
            .flatMap((r) => Array.from({ length: r.length }, (_, i) => r.start + i));
    const enc = encodeFork(extents, forkBytes, bt, n.ino, geo, uuid);
    for (const [b, data] of enc.blocks) meta.set(b, data);
    return {
      node: n,
      format: enc.btree ? FMT_BTREE : FMT_EXTENTS,
      dataFork: enc.btree ? enc.fork : enc.fork.subarray(0, extents.length * 16),
      nextents: extents.length,
      size,
      nblocks: dataBlocks + bt.length + attrBlocks,
      attr,
    };
  };
  switch (e.type) {
    case 'file': {
      const blocks = Math.ceil(e.size / BLOCK_SIZE);
      const kept = n.keep;
      const extents =
        kept !== null
          ? toExtents(kept.runs)
          : blocks === 0
            ? []
            : runsToExtents(alloc.allocate(blocks), 0);
      if (kept === null || kept.rewrite || writeKept)
        for (const x of extents)
          files.push({
            block: x.start,
            blocks: x.length,
            hash: e.hash!,
            size: e.size,
            offset: x.offset * BLOCK_SIZE,
          });
      return { ...withExtents(extents, e.size, blocks), runs: extents.map((x) => ({ ...x })) };
    }
    case 'dir': {
      const entries: DirEntrySpec[] = n.children.map((c) => ({
        name: c.name,
        ino: c.node.ino,
        ftype: c.ftype,
      }));
      const layout = layoutDirectory(entries, n.ino, n.parent?.ino ?? n.ino, forkBytes, uuid);
      if (layout.kind === 'short')
        return {
          node: n,
          format: FMT_LOCAL,
          dataFork: layout.fork,
          nextents: 0,
          size: layout.size,
          nblocks: attrBlocks,
          attr,
        };
      // Data blocks together, then the index blocks, then the free index blocks, each group contiguous where it can be.
      const extents: Extent[] = [];
      const groups = [
        layout.blocks.filter((b) => b.logical < LEAF_FIRST_BLOCK),
        layout.blocks.filter((b) => b.logical >= LEAF_FIRST_BLOCK && b.logical < FREE_FIRST_BLOCK),
        layout.blocks.filter((b) => b.logical >= FREE_FIRST_BLOCK),
      ];
      for (const g of groups) {
        if (g.length === 0) continue;
        const linear = alloc
          .allocate(g.length)
          .flatMap((r) => Array.from({ length: r.length }, (_, i) => r.start + i));
        g.forEach((b, i) => {
          meta.set(linear[i]!, b.build(geo.daddr(linear[i]!)));
          const last = extents[extents.length - 1];
          if (
            last !== undefined &&
            last.offset + last.length === b.logical &&
            last.start + last.length === linear[i]!
          )
            extents[extents.length - 1] = { ...last, length: last.length + 1 };
          else extents.push({ offset: b.logical, start: linear[i]!, length: 1 });
        });
      }
      return withExtents(extents, layout.size, layout.blocks.length);
    }
    case 'symlink': {
      const t = Buffer.from(e.target ?? '');
      if (t.length === 0 || t.length > SYMLINK_MAX)
        throw input(`the target of ${e.path} is empty or longer than ${SYMLINK_MAX} bytes`);
      if (t.length <= forkBytes)
        return {
          node: n,
          format: FMT_LOCAL,
          dataFork: t,
          nextents: 0,
          size: t.length,
          nblocks: attrBlocks,
          attr,
        };
      const block = alloc.allocate(1)[0]!.start;
      const b = Buffer.alloc(BLOCK_SIZE);
      b.writeUInt32BE(MAGIC.symlink, 0);
      b.writeUInt32BE(0, 4);
      b.writeUInt32BE(t.length, 8);
      uuid.copy(b, 16);
      b.writeBigUInt64BE(BigInt(n.ino), 32);
      b.writeBigUInt64BE(geo.daddr(block), 40);
      t.copy(b, 56);
      setCrc(b, 12);
      meta.set(block, b);
      return withExtents([{ offset: 0, start: block, length: 1 }], t.length, 1);
    }
    default: {
      // Devices and fifos: the device number in the data fork, as Linux's old sysv encoding.
      const fork = Buffer.alloc(4);
      if (e.type === 'char' || e.type === 'block') {
        const { major, minor } = e.rdev ?? { major: 0, minor: 0 };
        if (major >= 2 ** 14 || minor >= 2 ** 18)
          throw limit(`the device number of ${e.path} does not fit XFS's 32 bits`);
        fork.writeUInt32BE(((major << 18) | minor) >>> 0, 0);
      }
      return {
        node: n,
        format: FMT_DEV,
        dataFork: fork,
        nextents: 0,
        size: 0,
        nblocks: attrBlocks,
        attr,
      };
    }
  }
}
