import { createHash } from 'node:crypto';
import { FerryError } from '../../errors/index.js';
import type { Manifest, ManifestEntry } from '../../store/index.js';
import { crc32c } from '../../util/crc32c.js';
import type { Run } from '../ext4/extents.js';
import type { FileRegion } from '../ext4/plan-ext4.js';
import { newestMtime } from '../tree-time.js';
import { buildShortBtree, shortBtreeBlocks } from './ag-btree.js';
import { encodeAgf, encodeAgfl, encodeAgi } from './ag-headers.js';
import { type BlockRun, OutOfSpace, XfsAllocator } from './allocator.js';
import { bmbtBlocks, type Extent, encodeFork, toExtents } from './bmap.js';
import { setCrc } from './checksum.js';
import {
  BLOCK_SIZE,
  BNO_ROOT,
  CHUNK_BLOCKS,
  CNT_ROOT,
  FINO_ROOT,
  FMT_BTREE,
  FMT_DEV,
  FMT_EXTENTS,
  FMT_LOCAL,
  FTYPE,
  INO_ROOT,
  INODE_SIZE,
  INODES_PER_BLOCK,
  INODES_PER_CHUNK,
  LITERAL_SIZE,
  LOG_BLOCKS,
  MAGIC,
  MAX_AG_BLOCKS,
  MIN_AG_BLOCKS,
  NULL_AGINO,
  PREALLOC_BLOCKS,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  SECTOR_SIZE,
  SYMLINK_MAX,
} from './constants.js';
import {
  type DirEntrySpec,
  FREE_FIRST_BLOCK,
  LEAF_FIRST_BLOCK,
  layoutDirectory,
} from './directory.js';
import { XfsGeometry } from './geometry.js';
import { encodeFreeInode, encodeInode, type XfsTime, xfsTime } from './inode.js';
import { cleanLogBlock } from './log.js';
import { encodeSuperblock } from './superblock.js';
import {
  attrLeafBlock,
  layoutAttrLeaf,
  REMOTE_ROOM,
  remoteValueBlocks,
  shortformAttrs,
  toXfsXattrs,
  type XfsXattr,
} from './xattr.js';
import type { MapRun, XfsMap, XfsMapNode } from './xfs-map.js';

export interface XfsPlanOptions {
  /** Identity seed (the revision id): UUID and inode generations derive from it. */
  readonly revision: string;
  /** Size in 4 KiB blocks; absent: the smallest filesystem that holds the tree. */
  readonly blocks?: number;
  readonly label?: string;
  /** AG size in blocks (at least 4096); absent: up to 4 GiB AGs, at least two. */
  readonly agBlocks?: number;
  /** The map of a previous render: its geometry, identity, inode numbers and unchanged files' blocks stay. */
  readonly base?: XfsMap;
}

export interface XfsPlan {
  readonly blocksCount: number;
  readonly uuid: Buffer;
  readonly meta: ReadonlyMap<number, Buffer>;
  readonly files: readonly FileRegion[];
  /** Blocks the base used that this render frees. */
  readonly freed: readonly Run[];
  readonly map: XfsMap;
  readonly stats: {
    readonly inodes: number;
    readonly agcount: number;
    readonly usedBlocks: number;
    readonly keptFiles: number;
  };
}

interface Node {
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

/** Changed files of at least this many blocks (a 512 KiB chunk) are rewritten in place over a base. */
const IN_PLACE_BLOCKS = 128;

/** The attribute fork's offset (8-byte units) when it holds extents: the kernel's default, 40 bytes for it. */
const ATTR_FORKOFF = 37;

/** 16 bytes derived from a label and a revision id. */
export function deriveXfs(label: string, revision: string): Buffer {
  return createHash('sha256').update(`ferry xfs ${label}\0${revision}`).digest().subarray(0, 16);
}

/** The filesystem UUID an XFS render of `revision` gets (RFC 4122 version 4 shape). */
export function xfsUuid(revision: string): Buffer {
  const u = Buffer.from(deriveXfs('uuid', revision));
  u[6] = ((u[6] ?? 0) & 0x0f) | 0x40;
  u[8] = ((u[8] ?? 0) & 0x3f) | 0x80;
  return u;
}

function input(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_INPUT', `Cannot lay out the filesystem: ${reason}`);
}

function limit(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_LIMIT', `Cannot lay out the filesystem: ${reason}`);
}

const TYPE_BITS = {
  file: S_IFREG,
  dir: S_IFDIR,
  symlink: S_IFLNK,
  char: S_IFCHR,
  block: S_IFBLK,
  fifo: S_IFIFO,
} as const;

function prepareNodes(manifest: Manifest): Node[] {
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
function estimate(nodes: readonly Node[]): number {
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

/** AG count and size for `blocks`: at least two AGs (xfs_repair wants them), each 16 MiB to 1 TiB. */
function geometryFor(blocks: number, fixed: boolean, agSize?: number): XfsGeometry {
  if (
    agSize !== undefined &&
    (!Number.isSafeInteger(agSize) || agSize < MIN_AG_BLOCKS || agSize > MAX_AG_BLOCKS)
  )
    throw input(`an AG size of ${agSize} blocks is outside ${MIN_AG_BLOCKS} to ${MAX_AG_BLOCKS}`);
  let agcount = Math.max(2, Math.ceil(blocks / (agSize ?? 2 ** 20)));
  let agblocks = agSize ?? Math.ceil(blocks / agcount);
  if (agblocks > MAX_AG_BLOCKS) {
    agcount = Math.ceil(blocks / MAX_AG_BLOCKS);
    agblocks = Math.ceil(blocks / agcount);
  }
  if (agblocks < MIN_AG_BLOCKS) {
    if (fixed)
      throw limit(
        `${blocks} blocks of ${BLOCK_SIZE} bytes are too few; XFS needs two AGs of 16 MiB, give a --size of at least 32 MiB`,
      );
    agblocks = MIN_AG_BLOCKS;
  }
  const dblocks = fixed ? blocks : agcount * agblocks;
  // A short last AG too small for its headers and some room is left out.
  const last = dblocks - agblocks * (agcount - 1);
  if (last < MIN_AG_BLOCKS && agcount > 2)
    return new XfsGeometry(agcount - 1, agblocks, agblocks * (agcount - 1));
  const half = Math.floor(dblocks / 2);
  if (last < MIN_AG_BLOCKS && half >= MIN_AG_BLOCKS) return new XfsGeometry(2, half, half * 2);
  if (last < MIN_AG_BLOCKS)
    throw limit(
      `${blocks} blocks of ${BLOCK_SIZE} bytes do not make two AGs of at least 16 MiB; give a larger --size`,
    );
  return new XfsGeometry(agcount, agblocks, dblocks);
}

/**
 * Lays out an XFS v5 filesystem for a revision: AG geometry, inode chunks,
 * every block, every btree and header with its CRC, and a clean log. Like
 * the ext4 writer, everything derives from the manifest and the revision
 * id, so two renders of one revision are the same bytes.
 */
export function planXfs(manifest: Manifest, options: XfsPlanOptions): XfsPlan {
  if (options.label !== undefined && Buffer.byteLength(options.label) > 12)
    throw input(`the label "${options.label.slice(0, 40)}" is longer than the 12 bytes XFS keeps`);
  const nodes = prepareNodes(manifest);
  const base = options.base;
  const uuid = base ? Buffer.from(base.uuid, 'hex') : xfsUuid(options.revision);
  const seed = crc32c(deriveXfs('generation', base?.revision ?? options.revision));
  const maxNs = newestMtime(manifest);
  const time = xfsTime(maxNs.toString(), '');
  if (base !== undefined) {
    // A lineage keeps its geometry: XFS does not shrink, and the partitions stay where they are.
    const geo = new XfsGeometry(base.agcount, base.agblocks, base.blocksCount);
    try {
      return attempt(nodes, geo, options, uuid, seed, time, true);
    } catch (error) {
      if (!(error instanceof OutOfSpace)) throw error;
      throw limit(
        `the tree no longer fits the base's ${base.blocksCount} blocks; render without --base`,
      );
    }
  }
  if (options.blocks !== undefined) {
    if (!Number.isSafeInteger(options.blocks) || options.blocks <= 0)
      throw input(`a size of ${options.blocks} blocks is not a count`);
    try {
      return attempt(
        nodes,
        geometryFor(options.blocks, true, options.agBlocks),
        options,
        uuid,
        seed,
        time,
        true,
      );
    } catch (error) {
      if (!(error instanceof OutOfSpace)) throw error;
      throw limit(
        `${options.blocks} blocks of ${BLOCK_SIZE} bytes do not hold the tree; give a larger --size`,
      );
    }
  }
  let want = Math.ceil(estimate(nodes) * 1.02) + 2 * PREALLOC_BLOCKS + 64;
  for (let tries = 0; ; tries++) {
    try {
      return attempt(
        nodes,
        geometryFor(want, false, options.agBlocks),
        options,
        uuid,
        seed,
        time,
        false,
      );
    } catch (error) {
      if (!(error instanceof OutOfSpace)) throw error;
      if (tries > 200) throw limit('no geometry holds the tree');
      want = Math.ceil(want * 1.03) + 256;
    }
  }
}

interface Placed {
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

function attempt(
  nodes: Node[],
  geo: XfsGeometry,
  options: XfsPlanOptions,
  uuid: Buffer,
  seed: number,
  time: XfsTime,
  fixed: boolean,
): XfsPlan {
  const alloc = new XfsAllocator(geo);
  const meta = new Map<number, Buffer>();
  const files: FileRegion[] = [];

  const base = options.base;
  // Inode chunks: the first where xfs_repair expects the root (AG block 12), the rest after it.
  // With a base: its chunks stay, and so do its inode numbers and unchanged files' blocks.
  const firstChunk = Math.ceil((INO_ROOT + 4 + 1 + 1) / 4) * 4;
  const chunks: number[] = [];
  if (base !== undefined) {
    for (const c of base.chunks) {
      if (c % 4 !== 0 || geo.agOf(c) !== geo.agOf(c + CHUNK_BLOCKS - 1))
        throw input('the base has a misplaced inode chunk');
      alloc.markRun(c, CHUNK_BLOCKS);
      chunks.push(c);
    }
    if (chunks[0] !== firstChunk)
      throw input("the base's root inode chunk is not where XFS keeps it");
    keepFiles(nodes, base, alloc, geo);
    alloc.prefer(freeChunks(base, geo));
  } else chunks.push(alloc.allocateChunk(firstChunk));
  const slotIno = (ci: number, k: number): number =>
    geo.ino(chunks[ci]! + Math.floor(k / INODES_PER_BLOCK), k % INODES_PER_BLOCK);
  const rootIno = slotIno(0, 0);
  const usedIno = new Set<number>([rootIno, rootIno + 1, rootIno + 2]);
  nodes[0]!.ino = rootIno;
  if (base !== undefined) {
    const inChunks = new Set<number>();
    chunks.forEach((_, ci) => {
      for (let k = 0; k < INODES_PER_CHUNK; k++) inChunks.add(slotIno(ci, k));
    });
    for (const n of nodes.slice(1)) {
      const b: XfsMapNode | undefined = base.nodes[n.path];
      if (
        b !== undefined &&
        b.type === n.entry.type &&
        inChunks.has(b.ino) &&
        !usedIno.has(b.ino)
      ) {
        n.ino = b.ino;
        usedIno.add(b.ino);
      }
    }
  }
  let ci = 0;
  let k = 0;
  for (const n of nodes) {
    if (n.ino !== 0 && usedIno.has(n.ino)) continue;
    for (;;) {
      if (k === INODES_PER_CHUNK) {
        ci++;
        k = 0;
      }
      if (ci === chunks.length)
        chunks.push(
          alloc.allocateChunk(base === undefined ? chunks[ci - 1]! + CHUNK_BLOCKS : firstChunk),
        );
      const ino = slotIno(ci, k++);
      if (usedIno.has(ino)) continue;
      n.ino = ino;
      usedIno.add(ino);
      break;
    }
  }
  for (const ino of usedIno)
    if (ino > 0xffffffff) throw limit('inode numbers would need more than 32 bits');

  // Per AG: the inode chunks, and the blocks their btrees take beyond the roots.
  const agChunks: { start: number; free: bigint; freeCount: number }[][] = Array.from(
    { length: geo.agcount },
    () => [],
  );
  chunks.forEach((c, i) => {
    let free = 0n;
    let freeCount = 0;
    for (let j = 0; j < INODES_PER_CHUNK; j++)
      if (!usedIno.has(slotIno(i, j))) {
        free |= 1n << BigInt(j);
        freeCount++;
      }
    agChunks[geo.agOf(c)]!.push({ start: c, free, freeCount });
  });
  // The inode btrees want their chunks in block order within each AG.
  for (const list of agChunks) list.sort((a, b) => a.start - b.start);
  const inoExtra: number[][] = [];
  const finoExtra: number[][] = [];
  for (let ag = 0; ag < geo.agcount; ag++) {
    const list = agChunks[ag]!;
    const need = (n: number): number[] => takeInAg(alloc, geo, ag, shortBtreeBlocks(n, 16, 4) - 1);
    inoExtra.push(need(list.length));
    finoExtra.push(need(list.filter((c) => c.freeCount > 0).length));
  }

  const placed: Placed[] = [];
  for (const n of nodes) placed.push(placeNode(n, alloc, geo, uuid, meta, files));

  // Inodes into their chunks.
  const chunkBufs = new Map<number, Buffer>();
  chunks.forEach((c, ci) => {
    for (let k = 0; k < CHUNK_BLOCKS; k++) {
      const b = Buffer.alloc(BLOCK_SIZE);
      for (let j = 0; j < INODES_PER_BLOCK; j++)
        encodeFreeInode(geo.ino(c + k, j), uuid).copy(b, j * INODE_SIZE);
      chunkBufs.set(c + k, b);
    }
    void ci;
  });
  const putInode = (ino: number, data: Buffer): void => {
    const agShift = 2 ** (geo.agblklog + 3);
    const ag = Math.floor(ino / agShift);
    const agbno = Math.floor((ino % agShift) / INODES_PER_BLOCK);
    const buf = chunkBufs.get(geo.agStart(ag) + agbno)!;
    data.copy(buf, (ino % INODES_PER_BLOCK) * INODE_SIZE);
  };
  const gen = (ino: number): number => {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(seed, 0);
    b.writeUInt32BE(ino, 4);
    return crc32c(b);
  };
  for (const p of placed) {
    const e = p.node.entry;
    const nlink = e.type === 'dir' ? 2 + p.node.subdirs : p.node.nlink;
    putInode(
      p.node.ino,
      encodeInode(
        {
          ino: p.node.ino,
          mode: TYPE_BITS[e.type] | (e.mode & 0o7777),
          uid: e.uid,
          gid: e.gid,
          nlink,
          time: xfsTime(e.mtime, e.path),
          size: p.size,
          nblocks: p.nblocks,
          format: p.format,
          nextents: p.nextents,
          dataFork: p.dataFork,
          attr: p.attr,
          generation: gen(p.node.ino),
        },
        uuid,
      ),
    );
  }
  // The realtime bitmap and summary inodes every XFS has: empty regular files.
  for (const ino of [rootIno + 1, rootIno + 2])
    putInode(
      ino,
      encodeInode(
        {
          ino,
          mode: S_IFREG,
          uid: 0,
          gid: 0,
          nlink: 1,
          time,
          size: 0,
          nblocks: 0,
          format: FMT_EXTENTS,
          nextents: 0,
          dataFork: Buffer.alloc(0),
          attr: null,
          generation: gen(ino),
        },
        uuid,
      ),
    );
  for (const [b, data] of chunkBufs) meta.set(b, data);

  // The log.
  meta.set(geo.logStartLinear, cleanLogBlock(uuid));

  // AG headers and btrees.
  let fdblocks = 0;
  let ifree = 0;
  const agHeads: { agf: Buffer; agi: Buffer; agfl: Buffer }[] = [];
  for (let ag = 0; ag < geo.agcount; ag++) {
    const free = alloc.freeExtents(ag);
    if (free.length > Math.floor((BLOCK_SIZE - 56) / 8))
      throw limit(`allocation group ${ag} has more free extents than one btree block holds`);
    const rec = (a: number, b: number): Buffer => {
      const r = Buffer.alloc(8);
      r.writeUInt32BE(a, 0);
      r.writeUInt32BE(b, 4);
      return r;
    };
    const bno = buildShortBtree(
      {
        magic: MAGIC.bno,
        agno: ag,
        recSize: 8,
        keySize: 8,
        records: free.map((f) => rec(f.start, f.length)),
        keyOf: (r) => r,
      },
      [BNO_ROOT],
      geo,
      uuid,
    );
    const bySize = [...free].sort((a, b) => a.length - b.length || a.start - b.start);
    const cnt = buildShortBtree(
      {
        magic: MAGIC.cnt,
        agno: ag,
        recSize: 8,
        keySize: 8,
        records: bySize.map((f) => rec(f.start, f.length)),
        keyOf: (r) => r,
      },
      [CNT_ROOT],
      geo,
      uuid,
    );
    const list = agChunks[ag]!;
    const inoRec = (c: { start: number; free: bigint; freeCount: number }): Buffer => {
      const r = Buffer.alloc(16);
      r.writeUInt32BE(geo.agino(geo.ino(c.start, 0)), 0);
      r.writeUInt32BE(c.freeCount, 4);
      r.writeBigUInt64BE(c.free, 8);
      return r;
    };
    const ino = buildShortBtree(
      {
        magic: MAGIC.ino,
        agno: ag,
        recSize: 16,
        keySize: 4,
        records: list.map(inoRec),
        keyOf: (r) => r.subarray(0, 4),
      },
      [INO_ROOT, ...inoExtra[ag]!],
      geo,
      uuid,
    );
    const fino = buildShortBtree(
      {
        magic: MAGIC.fino,
        agno: ag,
        recSize: 16,
        keySize: 4,
        records: list.filter((c) => c.freeCount > 0).map(inoRec),
        keyOf: (r) => r.subarray(0, 4),
      },
      [FINO_ROOT, ...finoExtra[ag]!],
      geo,
      uuid,
    );
    for (const t of [bno, cnt, ino, fino])
      for (const [agbno, data] of t.blocks) meta.set(geo.agStart(ag) + agbno, data);
    const freeBlocks = free.reduce((s, f) => s + f.length, 0);
    fdblocks += freeBlocks;
    const agFree = list.reduce((s, c) => s + c.freeCount, 0);
    ifree += agFree;
    const length = geo.agLength(ag);
    agHeads.push({
      agf: encodeAgf({
        agno: ag,
        length,
        uuid,
        bnoLevel: bno.levels,
        cntLevel: cnt.levels,
        freeBlocks,
        longest: free.reduce((m, f) => Math.max(m, f.length), 0),
        btreeBlocks: 0,
      }),
      agi: encodeAgi({
        agno: ag,
        length,
        uuid,
        count: list.length * INODES_PER_CHUNK,
        free: agFree,
        inoLevel: ino.levels,
        finoLevel: fino.levels,
        newino:
          list.length === 0 ? NULL_AGINO : geo.agino(geo.ino(list[list.length - 1]!.start, 0)),
      }),
      agfl: encodeAgfl(ag, uuid),
    });
  }
  // The smallest filesystem still leaves the kernel what it sets aside at mount (the reserved
  // pool, 5 % up to 8192 blocks, and per-AG metadata reserves) and a mebibyte to work in.
  if (!fixed && fdblocks < Math.min(8192, Math.ceil(geo.dblocks * 0.05)) + geo.agcount * 64 + 256)
    throw new OutOfSpace();
  const sb = encodeSuperblock({
    geo,
    uuid,
    label: options.label ?? '',
    rootIno,
    icount: chunks.length * INODES_PER_CHUNK,
    ifree,
    fdblocks,
  });
  for (let ag = 0; ag < geo.agcount; ag++) {
    const b = Buffer.alloc(BLOCK_SIZE);
    const h = agHeads[ag]!;
    sb.copy(b, 0);
    h.agf.copy(b, SECTOR_SIZE);
    h.agi.copy(b, 2 * SECTOR_SIZE);
    h.agfl.copy(b, 3 * SECTOR_SIZE);
    meta.set(geo.agStart(ag), b);
  }

  files.sort((a, b) => a.block - b.block);
  const mapNodes: Record<string, XfsMapNode> = {};
  for (const p of placed) {
    const n = p.node;
    const e = n.entry;
    mapNodes[n.path] =
      e.type === 'file'
        ? { ino: n.ino, type: e.type, hash: e.hash!, size: e.size, runs: p.runs ?? [] }
        : { ino: n.ino, type: e.type };
  }
  let keptFiles = 0;
  for (const n of nodes) if (n.keep !== null && !n.keep.rewrite) keptFiles++;
  const freed: Run[] = [];
  for (const r of base?.used ?? [])
    for (let b = r.start; b < r.start + r.length; b++)
      if (!alloc.isUsed(b)) {
        const last = freed[freed.length - 1];
        if (last !== undefined && last.physical + last.length === b)
          freed[freed.length - 1] = { ...last, length: last.length + 1 };
        else freed.push({ logical: 0, physical: b, length: 1 });
      }
  return {
    blocksCount: geo.dblocks,
    uuid,
    meta,
    files,
    freed,
    map: {
      format: 'ferry-xfs-map',
      version: 1,
      revision: options.revision,
      uuid: uuid.toString('hex'),
      blocksCount: geo.dblocks,
      agcount: geo.agcount,
      agblocks: geo.agblocks,
      chunks,
      used: alloc.usedRuns(),
      nodes: mapNodes,
    },
    stats: {
      inodes: nodes.length + 2,
      agcount: geo.agcount,
      usedBlocks: geo.dblocks - fdblocks,
      keptFiles,
    },
  };
}

/**
 * Marks the blocks of files a base holds: unchanged ones stay (and are not
 * written again), changed ones of the same size of at least 512 KiB are
 * rewritten in place; the rest get new blocks.
 */
function keepFiles(nodes: Node[], base: XfsMap, alloc: XfsAllocator, geo: XfsGeometry): void {
  for (const n of nodes) {
    n.keep = null;
    const e = n.entry;
    const b = base.nodes[n.path];
    if (e.type !== 'file' || b?.type !== 'file' || b.runs === undefined) continue;
    const blocks = Math.ceil(e.size / BLOCK_SIZE);
    let logical = 0;
    let fits = true;
    for (const r of b.runs) {
      if (r.offset !== logical || geo.agOf(r.start) !== geo.agOf(r.start + r.length - 1))
        fits = false;
      for (let x = r.start; x < r.start + r.length && fits; x++) if (alloc.isUsed(x)) fits = false;
      logical += r.length;
    }
    if (!fits || logical !== blocks) continue;
    const same = b.hash === e.hash && b.size === e.size;
    if (!same && blocks < IN_PLACE_BLOCKS) continue;
    for (const r of b.runs) alloc.markRun(r.start, r.length);
    n.keep = { runs: b.runs, rewrite: !same };
  }
}

/** The 512 KiB chunks (128 blocks) of the filesystem its base left wholly free, in block order. */
function freeChunks(base: XfsMap, geo: XfsGeometry): BlockRun[] {
  const chunk = 128;
  const busy = new Uint8Array(Math.ceil(geo.dblocks / chunk));
  for (const r of base.used)
    for (let c = Math.floor(r.start / chunk); c * chunk < r.start + r.length; c++) busy[c] = 1;
  const out: BlockRun[] = [];
  for (let c = 0; c < busy.length; c++) {
    if (busy[c] === 1) continue;
    let start = c * chunk;
    const end = Math.min(start + chunk, geo.dblocks);
    // A chunk across an AG boundary is offered as its two halves.
    const agEnd = geo.agStart(geo.agOf(start)) + geo.agLength(geo.agOf(start));
    if (agEnd < end) {
      out.push({ start, length: agEnd - start });
      start = agEnd;
    }
    if (end > start) out.push({ start, length: end - start });
  }
  return out;
}

/** `n` single blocks in AG `ag` (btree blocks must stay in their AG). */
function takeInAg(alloc: XfsAllocator, geo: XfsGeometry, ag: number, n: number): number[] {
  const out: number[] = [];
  for (const f of alloc.freeExtents(ag)) {
    for (let k = 0; k < f.length && out.length < n; k++) out.push(f.start + k);
    if (out.length >= n) break;
  }
  if (out.length < n) throw new OutOfSpace();
  for (const agbno of out) alloc.markUsed(geo.agStart(ag) + agbno);
  return out;
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
function placeNode(
  n: Node,
  alloc: XfsAllocator,
  geo: XfsGeometry,
  uuid: Buffer,
  meta: Map<number, Buffer>,
  files: FileRegion[],
): Placed {
  const e = n.entry;
  // The attribute fork first: short form when it takes at most half the inode's literal area.
  let attr: Placed['attr'] = null;
  let attrBlocks = 0;
  if (n.xattrs.length > 0) {
    const sf = shortformAttrs(n.xattrs);
    const sfBytes = sf === null ? Infinity : Math.ceil(sf.length / 8) * 8;
    if (sf !== null && sfBytes <= LITERAL_SIZE / 2) {
      const fork = Buffer.alloc(sfBytes);
      sf.copy(fork);
      attr = { forkoff: (LITERAL_SIZE - sfBytes) / 8, format: FMT_LOCAL, nextents: 0, fork };
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
      const forkBytes = LITERAL_SIZE - ATTR_FORKOFF * 8;
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
        forkoff: ATTR_FORKOFF,
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
      if (kept === null || kept.rewrite)
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
