import { createHash } from 'node:crypto';
import type { Manifest } from '../../store/index.js';
import { crc32c } from '../../util/crc32c.js';
import type { Run } from '../ext4/extents.js';
import type { FileRegion } from '../ext4/plan-ext4.js';
import { modeOf, S_IFREG } from '../file-mode.js';
import { newestMtime } from '../tree-time.js';
import { buildShortBtree, shortBtreeBlocks } from './ag-btree.js';
import { encodeAgf, encodeAgfl, encodeAgi } from './ag-headers.js';
import { OutOfSpace, XfsAllocator } from './allocator.js';
import { freeChunks, keepFiles } from './base-reuse.js';
import {
  BLOCK_SIZE,
  BNO_ROOT,
  CHUNK_BLOCKS,
  CNT_ROOT,
  FINO_ROOT,
  FMT_EXTENTS,
  INO_ROOT,
  INODE_ALIGN,
  INODE_SIZE,
  INODES_PER_BLOCK,
  INODES_PER_CHUNK,
  LARGE_LOG_BLOCKS,
  LARGE_LOG_FROM,
  LOG_BLOCKS,
  MAGIC,
  MAX_AG_BLOCKS,
  MIN_AG_BLOCKS,
  NULL_AGINO,
  PREALLOC_BLOCKS,
  SECTOR_SIZE,
} from './constants.js';
import { XfsGeometry } from './geometry.js';
import { encodeFreeInode, encodeInode, type XfsTime, xfsTime } from './inode.js';
import { cleanLogBlock } from './log.js';
import { type Placed, placeNode } from './place-node.js';
import { input, limit } from './plan-errors.js';
import { encodeSuperblock } from './superblock.js';
import { estimate, type Node, prepareNodes } from './tree-nodes.js';
import type { XfsMap, XfsMapNode } from './xfs-map.js';

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
  /** The base's bytes are not at hand (its map alone): list kept files among those to write too. */
  readonly writeKept?: boolean;
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

/** AG count and size for `blocks`: at least two AGs (xfs_repair wants them), each 16 MiB to 1 TiB. */
function geometryFor(
  blocks: number,
  fixed: boolean,
  agSize?: number,
  logBlocks = LOG_BLOCKS,
): XfsGeometry {
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
    return new XfsGeometry(agcount - 1, agblocks, agblocks * (agcount - 1), logBlocks);
  const half = Math.floor(dblocks / 2);
  if (last < MIN_AG_BLOCKS && half >= MIN_AG_BLOCKS)
    return new XfsGeometry(2, half, half * 2, logBlocks);
  if (last < MIN_AG_BLOCKS)
    throw limit(
      `${blocks} blocks of ${BLOCK_SIZE} bytes do not make two AGs of at least 16 MiB; give a larger --size`,
    );
  return new XfsGeometry(agcount, agblocks, dblocks, logBlocks);
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
    const geo = new XfsGeometry(base.agcount, base.agblocks, base.blocksCount, base.logBlocks);
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
    // A size from 1.25 GiB on gets mkfs.xfs's 64 MiB log where the tree leaves room for it.
    const logs = options.blocks >= LARGE_LOG_FROM ? [LARGE_LOG_BLOCKS, LOG_BLOCKS] : [LOG_BLOCKS];
    for (const log of logs) {
      try {
        const geo = geometryFor(options.blocks, true, options.agBlocks, log);
        return attempt(nodes, geo, options, uuid, seed, time, true);
      } catch (error) {
        if (!(error instanceof OutOfSpace)) throw error;
      }
    }
    throw limit(
      `${options.blocks} blocks of ${BLOCK_SIZE} bytes do not hold the tree; give a larger --size`,
    );
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
      if (
        (c - geo.agStart(geo.agOf(c))) % INODE_ALIGN !== 0 ||
        geo.agOf(c) !== geo.agOf(c + CHUNK_BLOCKS - 1)
      )
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
  for (const n of nodes)
    placed.push(placeNode(n, alloc, geo, uuid, meta, files, options.writeKept === true));

  // Inodes into their chunks.
  const chunkBufs = new Map<number, Buffer>();
  for (const c of chunks)
    for (let k = 0; k < CHUNK_BLOCKS; k++) {
      const b = Buffer.alloc(BLOCK_SIZE);
      for (let j = 0; j < INODES_PER_BLOCK; j++)
        encodeFreeInode(geo.ino(c + k, j), uuid).copy(b, j * INODE_SIZE);
      chunkBufs.set(c + k, b);
    }
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
          mode: modeOf(e),
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
    const { free, extra } = freeSpaceBtreeBlocks(alloc, geo, ag);
    const half = extra.length / 2;
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
      [BNO_ROOT, ...extra.slice(0, half)],
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
      [CNT_ROOT, ...extra.slice(half)],
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
    // The superblock counts free space btree blocks beyond the roots as free, as the kernel does.
    fdblocks += freeBlocks + extra.length;
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
        btreeBlocks: extra.length,
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
      logBlocks: geo.logBlocks,
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
 * The AG's free extents once the free space btrees have the blocks they
 * need beyond their roots (taken from the end of the largest free extent,
 * so the extents stay as many), and those blocks, by AG block number.
 */
function freeSpaceBtreeBlocks(
  alloc: XfsAllocator,
  geo: XfsGeometry,
  ag: number,
): { free: { start: number; length: number }[]; extra: number[] } {
  const extra: number[] = [];
  for (;;) {
    const free = alloc.freeExtents(ag);
    const need = 2 * (shortBtreeBlocks(free.length, 8, 8) - 1);
    if (need === extra.length) return { free, extra };
    const largest = free.reduce((m, f) => (f.length > m.length ? f : m), free[0]!);
    const take = need - extra.length;
    if (take < 0 || largest === undefined || largest.length <= take) throw new OutOfSpace();
    for (let i = 1; i <= take; i++) {
      const agbno = largest.start + largest.length - i;
      alloc.markUsed(geo.agStart(ag) + agbno);
      extra.push(agbno);
    }
  }
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
