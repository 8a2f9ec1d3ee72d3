import { createHash } from 'node:crypto';
import { FerryError } from '../../errors/index.js';
import type { Manifest, ManifestEntry } from '../../store/index.js';
import { modeOf, S_IFREG } from '../file-mode.js';
import { newestMtime } from '../tree-time.js';
import { BlockAllocator, OutOfSpace } from './allocator.js';
import { ext4Crc, fsSeed, inodeSeed } from './checksum.js';
import {
  BLOCK_SIZE,
  BLOCKS_PER_GROUP,
  FAST_SYMLINK_MAX,
  FIRST_INO,
  FT,
  INODE_FLAG_EXTENTS,
  INODE_SIZE,
  JOURNAL_INO,
  ROOT_INO,
} from './constants.js';
import { type DirEntrySpec, encodeDirectory, packDirectory } from './directory.js';
import type { Ext4Map, MapNode } from './ext4-map.js';
import { buildExtentTree, leafBlocksFor, type Run, toExtents } from './extents.js';
import { type Ext4Time, encodeInode, ext4Time } from './inode.js';
import { journalBlocksFor, journalSuperblock } from './journal.js';
import { encodeGdt, encodeSuperblock, type GroupDesc, gdtBlocks, hasBackup } from './superblock.js';
import { type Ext4Xattr, fitsBlock, inlineXattrArea, toExt4Xattrs, xattrBlock } from './xattr.js';

export interface Ext4PlanOptions {
  /** Identity seed (the revision id): UUID and hash seed derive from it unless a base is given. */
  readonly revision: string;
  /** Size in blocks; absent: the smallest filesystem that holds the tree. */
  readonly blocks?: number;
  readonly label?: string;
  /** The block map of a previous render: unchanged files keep their inodes and blocks. */
  readonly base?: Ext4Map;
  /** The base's bytes are not at hand (its map alone): list kept files among those to write too. */
  readonly writeKept?: boolean;
}

/** A run of file contents to copy from the store into the image. */
export interface FileRegion {
  readonly block: number;
  readonly blocks: number;
  readonly hash: string;
  /** Bytes of the file, and the byte offset of this run within it. */
  readonly size: number;
  readonly offset: number;
}

export interface Ext4Plan {
  readonly blocksCount: number;
  readonly uuid: Buffer;
  /** Metadata blocks (4 KiB each) by block number. */
  readonly meta: ReadonlyMap<number, Buffer>;
  /** File contents to write, by block. With a base, only files whose blocks changed (unless writeKept). */
  readonly files: readonly FileRegion[];
  /** Blocks the base used that this render frees (zeroed when asked). */
  readonly freed: readonly Run[];
  /** The map of this render, for the next one's --base. */
  readonly map: Ext4Map;
  readonly stats: {
    readonly inodes: number;
    readonly groups: number;
    readonly usedBlocks: number;
    readonly keptFiles: number;
    readonly rewrittenFiles: number;
  };
}

/** Blocks after the superblock copy kept for descriptors: up to 1024 groups (128 GiB) without moving data. */
const GDT_RESERVE = gdtBlocks(1024);
/** Inode tables never smaller than this per group (one inode per 64 KiB). */
const MIN_INODES_PER_GROUP = 2048;
/** Changed files at least this many blocks (a chunk) are rewritten in place; smaller ones move to packed new space. */
const IN_PLACE_BLOCKS = 128;
const MAX_INODES = 2 ** 32 - 1;

interface Node {
  readonly path: string;
  readonly entry: ManifestEntry;
  ino: number;
  parent: Node | null;
  links: number;
  /** Names in a directory and the nodes they name (inode numbers come later). */
  readonly children: { readonly name: Buffer; readonly node: Node; readonly type: number }[];
  /** The directory's entries once inode numbers are assigned. */
  entries: DirEntrySpec[];
  subdirs: number;
  /** Blocks of data the node needs, and their contents where they are metadata. */
  dataBlocks: number;
  runs: Run[];
  leaves: number[];
  xattrs: Ext4Xattr[];
  xattrBlock: number;
  kept: boolean;
}

function limit(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_LIMIT', `Cannot lay out the filesystem: ${reason}`);
}

/** 16 bytes derived from a label and a revision id: how a render names things without randomness. */
export function derive(label: string, revision: string): Buffer {
  return createHash('sha256').update(`ferry ext4 ${label}\0${revision}`).digest().subarray(0, 16);
}

/** The filesystem UUID a render of `revision` gets (a base passes its own on). */
export function ext4Uuid(revision: string, base?: Ext4Map): Buffer {
  return base ? Buffer.from(base.uuid, 'hex') : uuidFrom(derive('uuid', revision));
}

/** An RFC 4122 version-4-shaped UUID from 16 derived bytes (so tools that check the variant accept it). */
export function uuidFrom(bytes: Buffer): Buffer {
  const u = Buffer.from(bytes);
  u[6] = ((u[6] ?? 0) & 0x0f) | 0x40;
  u[8] = ((u[8] ?? 0) & 0x3f) | 0x80;
  return u;
}

const ftOf = (type: ManifestEntry['type']): number => FT[type];

function baseName(p: string): Buffer {
  return Buffer.from(p.slice(p.lastIndexOf('/') + 1));
}

function parentPath(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** The newest mtime of the tree in seconds (clamped to 32 bits): the filesystem's own timestamps. */
function treeTime(m: Manifest): number {
  const max = newestMtime(m) / 1_000_000_000n;
  return Number(max > 0xffffffffn ? 0xffffffffn : max);
}

/**
 * Lays out an ext4 filesystem for a revision: inode numbers, every block,
 * every metadata structure with its checksum. Everything derives from the
 * manifest (and the base map, when given), so the same input gives the same
 * bytes on any machine: no clock, no randomness, no directory order but
 * the manifest's.
 */
export function planExt4(manifest: Manifest, options: Ext4PlanOptions): Ext4Plan {
  const base = options.base;
  const uuid = ext4Uuid(options.revision, base);
  const hashSeed = base
    ? Buffer.from(base.hashSeed, 'hex')
    : uuidFrom(derive('hash-seed', options.revision));
  const seed = fsSeed(uuid);
  const time = treeTime(manifest);
  const nodes = prepareNodes(manifest, time, base);
  const maxIno = nodes.reduce((n, x) => Math.max(n, x.ino), FIRST_INO);
  const inodesWanted = Math.ceil(maxIno * 1.25) + 256;

  let dataBlocks = 0;
  for (const n of nodes)
    dataBlocks +=
      n.dataBlocks + (n.xattrs.length > 0 && inlineXattrArea(n.xattrs) === null ? 1 : 0);
  const journalBlocks = base
    ? base.journal.reduce((s, r) => s + r.length, 0)
    : journalBlocksFor(options.blocks ?? dataBlocks);

  let fixed = options.blocks;
  if (fixed !== undefined) {
    // A last group too small for its own bitmaps and inode table is left out, as mke2fs does.
    const tail = fixed % BLOCKS_PER_GROUP;
    if (
      tail > 0 &&
      tail < 1 + GDT_RESERVE + 2 + (32768 * INODE_SIZE) / BLOCK_SIZE + 64 &&
      fixed > BLOCKS_PER_GROUP
    )
      fixed -= tail;
  }
  let groups =
    fixed !== undefined
      ? Math.ceil(fixed / BLOCKS_PER_GROUP)
      : Math.max(1, Math.floor((dataBlocks + journalBlocks) / BLOCKS_PER_GROUP));
  if (base) groups = Math.max(groups, Math.ceil(base.blocksCount / BLOCKS_PER_GROUP));
  for (;;) {
    const ipg = base
      ? base.inodesPerGroup
      : Math.min(32768, Math.max(MIN_INODES_PER_GROUP, Math.ceil(inodesWanted / groups / 16) * 16));
    let capacity = groups * BLOCKS_PER_GROUP;
    if (fixed !== undefined) capacity = Math.min(capacity, fixed);
    try {
      if (groups * ipg < maxIno || groups * ipg > MAX_INODES) throw new OutOfSpace();
      return attempt(nodes, options, {
        groups,
        ipg,
        capacity,
        uuid,
        hashSeed,
        seed,
        time,
        journalBlocks,
      });
    } catch (error) {
      if (!(error instanceof OutOfSpace)) throw error;
      if (fixed !== undefined)
        throw limit(
          `${fixed} blocks of ${BLOCK_SIZE} bytes do not hold the tree; give a larger --size`,
        );
      groups++;
      if (groups > 2 ** 20) throw limit('the tree needs more than 2^20 block groups');
    }
  }
}

function prepareNodes(manifest: Manifest, time: number, base: Ext4Map | undefined): Node[] {
  const byPath = new Map<string, Node>();
  const nodes: Node[] = [];
  const make = (path: string, entry: ManifestEntry): Node => ({
    path,
    entry,
    ino: 0,
    parent: null,
    links: 1,
    children: [],
    entries: [],
    subdirs: 0,
    dataBlocks: 0,
    runs: [],
    leaves: [],
    xattrs: toExt4Xattrs(entry.xattrs),
    xattrBlock: 0,
    kept: false,
  });
  const entries = [...manifest.entries];
  if (entries[0]?.path !== '' || entries[0].type !== 'dir')
    throw new FerryError(
      'FERRY_RENDER_INPUT',
      'Cannot lay out the filesystem: the revision has no root directory',
    );
  const hasLostFound = entries.some((e) => e.path === 'lost+found');
  if (!hasLostFound) {
    // Every ext4 has one (e2fsck reconnects orphans there); mke2fs gives it 16 KiB.
    const lf: ManifestEntry = {
      path: 'lost+found',
      type: 'dir',
      mode: 0o700,
      uid: 0,
      gid: 0,
      mtime: `${time}000000000`,
      size: 0,
    };
    const at = entries.findIndex(
      (e, i) => i > 0 && Buffer.compare(Buffer.from(e.path), Buffer.from('lost+found')) > 0,
    );
    entries.splice(at < 0 ? entries.length : at, 0, lf);
  }
  for (const e of entries) {
    if (e.link !== undefined) {
      const primary = byPath.get(e.link);
      if (primary === undefined || primary.entry.type !== 'file')
        throw new FerryError(
          'FERRY_RENDER_INPUT',
          `Cannot lay out the filesystem: ${e.path} links to a missing file`,
        );
      primary.links++;
      const parent = byPath.get(parentPath(e.path));
      if (parent === undefined)
        throw new FerryError('FERRY_RENDER_INPUT', `Cannot lay out ${e.path}: no parent directory`);
      byPath.set(e.path, primary);
      parent.children.push({ name: baseName(e.path), node: primary, type: FT.file });
      continue;
    }
    const n = make(e.path, e);
    if (e.path !== '') {
      const parent = byPath.get(parentPath(e.path));
      if (parent === undefined || parent.entry.type !== 'dir')
        throw new FerryError('FERRY_RENDER_INPUT', `Cannot lay out ${e.path}: no parent directory`);
      n.parent = parent;
      parent.children.push({ name: baseName(e.path), node: n, type: ftOf(e.type) });
      if (e.type === 'dir') parent.subdirs++;
    }
    byPath.set(e.path, n);
    nodes.push(n);
  }
  // Inode numbers: the base's where the path kept its type, the lowest free ones for the rest.
  const taken = new Set<number>();
  const root = nodes[0]!;
  root.ino = ROOT_INO;
  taken.add(ROOT_INO);
  for (const n of nodes) {
    if (n === root) continue;
    const b = base?.nodes[n.path];
    if (b !== undefined && b.type === n.entry.type && b.ino >= FIRST_INO && !taken.has(b.ino)) {
      n.ino = b.ino;
      taken.add(b.ino);
    }
  }
  let next = FIRST_INO;
  const lf = nodes.find((n) => n.path === 'lost+found');
  if (lf !== undefined && lf.ino === 0 && !taken.has(FIRST_INO)) {
    lf.ino = FIRST_INO;
    taken.add(FIRST_INO);
  }
  for (const n of nodes) {
    if (n.ino !== 0) continue;
    while (taken.has(next)) next++;
    n.ino = next;
    taken.add(next);
  }
  if (next > MAX_INODES) throw limit('the tree has more than 2^32 inodes');
  for (const n of nodes) {
    n.entries = n.children.map((c) => ({ name: c.name, ino: c.node.ino, type: c.type }));
    const e = n.entry;
    if (e.type === 'file') n.dataBlocks = Math.ceil(e.size / BLOCK_SIZE);
    else if (e.type === 'dir')
      n.dataBlocks = n.path === 'lost+found' && !hasLostFound ? 4 : packDirectory(n.entries).length;
    else if (e.type === 'symlink') {
      const t = Buffer.byteLength(e.target ?? '');
      if (t >= BLOCK_SIZE)
        throw new FerryError(
          'FERRY_RENDER_INPUT',
          `Cannot lay out ${e.path}: its target is longer than a block`,
        );
      n.dataBlocks = t < FAST_SYMLINK_MAX ? 0 : 1;
    }
    if (n.xattrs.length > 0 && inlineXattrArea(n.xattrs) === null && !fitsBlock(n.xattrs))
      throw limit(`the extended attributes of ${e.path} do not fit one block`);
  }
  return nodes;
}

interface Geometry {
  readonly groups: number;
  readonly ipg: number;
  readonly capacity: number;
  readonly uuid: Buffer;
  readonly hashSeed: Buffer;
  readonly seed: number;
  readonly time: number;
  readonly journalBlocks: number;
}

function groupLayout(
  g: number,
  geo: Geometry,
): { start: number; bb: number; ib: number; it: number; metaEnd: number } {
  const start = g * BLOCKS_PER_GROUP;
  const bb = hasBackup(g) ? start + 1 + GDT_RESERVE : start;
  const itb = (geo.ipg * INODE_SIZE) / BLOCK_SIZE;
  return { start, bb, ib: bb + 1, it: bb + 2, metaEnd: bb + 2 + itb };
}

function attempt(nodes: Node[], options: Ext4PlanOptions, geo: Geometry): Ext4Plan {
  const base = options.base;
  const alloc = new BlockAllocator(geo.capacity);
  const gdt = gdtBlocks(geo.groups);
  if (gdt > GDT_RESERVE) throw limit('more than 1024 block groups are not supported yet');
  const layouts: ReturnType<typeof groupLayout>[] = [];
  for (let g = 0; g < geo.groups; g++) {
    const l = groupLayout(g, geo);
    if (l.metaEnd > geo.capacity) throw new OutOfSpace();
    if (hasBackup(g)) {
      alloc.markUsed(l.start, 1 + gdt);
      alloc.avoid(l.start + 1 + gdt, GDT_RESERVE - gdt);
    }
    alloc.markUsed(l.bb, l.metaEnd - l.bb);
    layouts.push(l);
  }
  alloc.setCursor(layouts[0]!.metaEnd);

  // Blocks a base render used that this one keeps.
  let journal: Run[];
  if (base) {
    for (const r of base.journal) alloc.markUsed(r.physical, r.length);
    journal = base.journal.map((r) => ({ ...r }));
  }
  // A failed attempt may have placed some nodes: every attempt starts from nothing.
  for (const n of nodes) {
    n.runs = [];
    n.leaves = [];
    n.xattrBlock = 0;
    n.kept = false;
  }
  const inPlace = new Set<Node>();
  if (base) {
    for (const n of nodes) {
      const b: MapNode | undefined = base.nodes[n.path];
      if (b === undefined || b.ino !== n.ino || b.type !== n.entry.type) continue;
      const sameBlocks = b.runs.reduce((s, r) => s + r.length, 0) === n.dataBlocks;
      const e = n.entry;
      if (e.type === 'file') {
        if (sameBlocks && b.hash === e.hash && b.size === e.size) n.kept = true;
        else if (sameBlocks && n.dataBlocks >= IN_PLACE_BLOCKS) inPlace.add(n);
        else continue;
      } else if (!sameBlocks) continue;
      n.runs = b.runs.map((r) => ({ ...r }));
      for (const r of n.runs) alloc.markUsed(r.physical, r.length);
      if (toExtentsCount(n.runs) > 4 && b.leaves.length === leafBlocksFor(toExtentsCount(n.runs))) {
        n.leaves = [...b.leaves];
        for (const l of n.leaves) alloc.markUsed(l, 1);
      }
      if (b.xattrBlock !== 0 && n.xattrs.length > 0 && inlineXattrArea(n.xattrs) === null) {
        n.xattrBlock = b.xattrBlock;
        alloc.markUsed(b.xattrBlock, 1);
      }
    }
    // New data goes first into chunks (128 blocks) the base left wholly free, then past its end.
    const ranges: { start: number; end: number }[] = [];
    for (let c = 0; c * 128 < Math.min(base.blocksCount, geo.capacity); c++) {
      const s = c * 128;
      const e = Math.min(s + 128, base.blocksCount, geo.capacity);
      let free = true;
      for (let b = s; b < e && free; b++) if (alloc.isUsed(b)) free = false;
      if (free) ranges.push({ start: s, end: e });
    }
    alloc.prefer(ranges);
    alloc.setCursor(Math.max(layouts[0]!.metaEnd, Math.min(base.blocksCount, geo.capacity)));
  } else {
    journal = alloc.allocate(geo.journalBlocks);
  }
  journal = journal!;

  // Everything else, in manifest order: a directory's blocks, then what it holds.
  for (const n of nodes) {
    if (n.runs.length === 0 && n.dataBlocks > 0) n.runs = alloc.allocate(n.dataBlocks);
    const need = n.runs.length === 0 ? 0 : leafBlocksFor(toExtentsCount(n.runs));
    if (n.leaves.length !== need)
      n.leaves = need === 0 ? [] : alloc.allocate(need).flatMap(runBlocks);
    if (n.xattrBlock === 0 && n.xattrs.length > 0 && inlineXattrArea(n.xattrs) === null)
      n.xattrBlock = alloc.allocate(1)[0]!.physical;
  }
  const blocksCount =
    options.blocks !== undefined
      ? geo.capacity
      : Math.max(alloc.end(), layouts[layouts.length - 1]!.metaEnd);
  if (blocksCount > geo.capacity) throw new OutOfSpace();

  // Metadata.
  const meta = new Map<number, Buffer>();
  const files: FileRegion[] = [];
  const inodeTables = new Map<number, Buffer>();
  const putInode = (ino: number, data: Buffer): void => {
    const g = Math.floor((ino - 1) / geo.ipg);
    const idx = (ino - 1) % geo.ipg;
    const block = layouts[g]!.it + Math.floor((idx * INODE_SIZE) / BLOCK_SIZE);
    let b = inodeTables.get(block);
    if (b === undefined) {
      b = Buffer.alloc(BLOCK_SIZE);
      inodeTables.set(block, b);
    }
    data.copy(b, (idx * INODE_SIZE) % BLOCK_SIZE);
  };
  const usedInodes = new Uint8Array(geo.groups * geo.ipg + 1);
  for (let i = 1; i < FIRST_INO; i++) usedInodes[i] = 1;
  const dirsPerGroup = new Array<number>(geo.groups).fill(0);

  // The journal inode.
  const jExt = toExtents(journal);
  const jLeaves = leafBlocksFor(jExt.length);
  if (jLeaves > 0) throw limit('the journal is too fragmented');
  const jTree = buildExtentTree(jExt, [], inodeSeed(geo.seed, JOURNAL_INO, 0));
  const jBytes = geo.journalBlocks * BLOCK_SIZE;
  putInode(
    JOURNAL_INO,
    encodeInode(
      {
        mode: S_IFREG | 0o600,
        uid: 0,
        gid: 0,
        size: jBytes,
        links: 1,
        time: { sec: geo.time, nsec: 0 },
        flags: INODE_FLAG_EXTENTS,
        iBlock: jTree.iBlock,
        blocks: geo.journalBlocks,
        xattrBlock: 0,
        inlineXattrs: null,
      },
      JOURNAL_INO,
      geo.seed,
    ),
  );
  meta.set(journal[0]!.physical, journalSuperblock(geo.journalBlocks, geo.uuid));

  let keptFiles = 0;
  let rewrittenFiles = 0;
  for (const n of nodes) {
    const e = n.entry;
    const iseed = inodeSeed(geo.seed, n.ino, 0);
    usedInodes[n.ino] = 1;
    const time: Ext4Time = ext4Time(e.mtime);
    let iBlock: Buffer = Buffer.alloc(60);
    let flags = 0;
    let size = e.size;
    let links = n.links;
    const extents = toExtents(n.runs);
    if (e.type === 'file' || e.type === 'dir' || (e.type === 'symlink' && n.dataBlocks > 0)) {
      flags = INODE_FLAG_EXTENTS;
      const tree = buildExtentTree(extents, n.leaves, iseed);
      iBlock = tree.iBlock;
      for (const l of tree.leaves) meta.set(l.block, l.data);
    }
    if (e.type === 'dir') {
      size = n.dataBlocks * BLOCK_SIZE;
      links = 2 + n.subdirs;
      if (links >= 65000) links = 1;
      const g = Math.floor((n.ino - 1) / geo.ipg);
      dirsPerGroup[g] = (dirsPerGroup[g] ?? 0) + 1;
      const packed = packDirectory(n.entries);
      while (packed.length < n.dataBlocks) packed.push([]);
      const blocks = encodeDirectory(packed, n.ino, n.parent?.ino ?? n.ino, iseed);
      const phys = extents.flatMap(runBlocks);
      for (const [i, b] of blocks.entries()) meta.set(phys[i]!, b);
    } else if (e.type === 'file') {
      if (n.kept) keptFiles++;
      else if (inPlace.has(n)) rewrittenFiles++;
      if (!n.kept || options.writeKept === true) {
        let offset = 0;
        for (const x of extents) {
          files.push({ block: x.physical, blocks: x.length, hash: e.hash!, size: e.size, offset });
          offset += x.length * BLOCK_SIZE;
        }
      }
    } else if (e.type === 'symlink') {
      const t = Buffer.from(e.target ?? '');
      size = t.length;
      if (n.dataBlocks === 0) t.copy(iBlock);
      else {
        const b = Buffer.alloc(BLOCK_SIZE);
        t.copy(b);
        meta.set(extents[0]!.physical, b);
      }
    } else if (e.type === 'char' || e.type === 'block') {
      const { major, minor } = e.rdev ?? { major: 0, minor: 0 };
      if (major < 256 && minor < 256) iBlock.writeUInt32LE((major << 8) | minor, 0);
      else iBlock.writeUInt32LE(((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0, 4);
    }
    if (n.xattrBlock !== 0) meta.set(n.xattrBlock, xattrBlock(n.xattrs, n.xattrBlock, geo.seed));
    const owned = n.dataBlocks + n.leaves.length + (n.xattrBlock !== 0 ? 1 : 0);
    putInode(
      n.ino,
      encodeInode(
        {
          mode: modeOf(e),
          uid: e.uid,
          gid: e.gid,
          size,
          links,
          time,
          flags,
          iBlock,
          blocks: owned,
          xattrBlock: n.xattrBlock,
          inlineXattrs: n.xattrBlock === 0 ? inlineXattrArea(n.xattrs) : null,
        },
        n.ino,
        geo.seed,
      ),
    );
  }
  for (const [b, data] of inodeTables) meta.set(b, data);

  // Bitmaps, descriptors, superblocks.
  const descs: GroupDesc[] = [];
  let freeBlocks = 0;
  let freeInodes = 0;
  const inodeBitmapBytes = geo.ipg / 8;
  for (let g = 0; g < geo.groups; g++) {
    const l = layouts[g]!;
    const end = Math.min(l.start + BLOCKS_PER_GROUP, blocksCount);
    const bbm = alloc.bitmap(l.start, BLOCKS_PER_GROUP, blocksCount, BLOCK_SIZE);
    const ibm = Buffer.alloc(BLOCK_SIZE, 0xff);
    ibm.fill(0, 0, inodeBitmapBytes);
    let usedI = 0;
    for (let i = 0; i < geo.ipg; i++) {
      if (usedInodes[g * geo.ipg + i + 1] === 1) {
        ibm[i >> 3] = (ibm[i >> 3] ?? 0) | (1 << (i & 7));
        usedI++;
      }
    }
    meta.set(l.bb, bbm);
    meta.set(l.ib, ibm);
    const fb = end - l.start - alloc.usedIn(l.start, end);
    freeBlocks += fb;
    freeInodes += geo.ipg - usedI;
    descs.push({
      blockBitmap: l.bb,
      inodeBitmap: l.ib,
      inodeTable: l.it,
      freeBlocks: fb,
      freeInodes: geo.ipg - usedI,
      usedDirs: dirsPerGroup[g] ?? 0,
      blockBitmapCsum: ext4BitmapCsum(geo.seed, bbm, BLOCKS_PER_GROUP / 8),
      inodeBitmapCsum: ext4BitmapCsum(geo.seed, ibm, inodeBitmapBytes),
    });
  }
  const gdtBuf = encodeGdt(descs, geo.seed);
  const sbFields = {
    blocksCount,
    groups: geo.groups,
    inodesPerGroup: geo.ipg,
    freeBlocks,
    freeInodes,
    reservedBlocks: Math.floor(blocksCount * 0.05),
    uuid: geo.uuid,
    hashSeed: geo.hashSeed,
    label: options.label ?? '',
    time: geo.time,
    journalIBlock: jTree.iBlock,
    journalBytes: jBytes,
  };
  for (let g = 0; g < geo.groups; g++) {
    if (!hasBackup(g)) continue;
    const l = layouts[g]!;
    const sb = encodeSuperblock(sbFields, g);
    const first = Buffer.alloc(BLOCK_SIZE);
    sb.copy(first, g === 0 ? 1024 : 0);
    meta.set(l.start, first);
    for (let i = 0; i < gdt; i++)
      meta.set(l.start + 1 + i, gdtBuf.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  }

  files.sort((a, b) => a.block - b.block);
  const mapNodes: Record<string, MapNode> = {};
  for (const n of nodes)
    mapNodes[n.path] = {
      ino: n.ino,
      type: n.entry.type,
      ...(n.entry.type === 'file' ? { hash: n.entry.hash!, size: n.entry.size } : {}),
      runs: n.runs,
      leaves: n.leaves,
      xattrBlock: n.xattrBlock,
    };
  const freed: Run[] = [];
  if (base) {
    // Blocks the base used and this render does not: stale contents unless zeroed.
    const baseUsed = (add: (r: Run) => void): void => {
      for (const b of Object.values(base.nodes)) {
        for (const r of b.runs) add(r);
        for (const l of b.leaves) add({ logical: 0, physical: l, length: 1 });
        if (b.xattrBlock !== 0) add({ logical: 0, physical: b.xattrBlock, length: 1 });
      }
    };
    baseUsed((r) => {
      for (let b = r.physical; b < r.physical + r.length; b++)
        if (b >= blocksCount || !alloc.isUsed(b))
          freed.push({ logical: 0, physical: b, length: 1 });
    });
  }
  return {
    blocksCount,
    uuid: geo.uuid,
    meta,
    files,
    freed: mergeRuns(freed),
    map: {
      format: 'ferry-ext4-map',
      version: 1,
      revision: options.revision,
      uuid: geo.uuid.toString('hex'),
      hashSeed: geo.hashSeed.toString('hex'),
      blocksCount,
      inodesPerGroup: geo.ipg,
      journal,
      nodes: mapNodes,
    },
    stats: {
      inodes: nodes.length + 1,
      groups: geo.groups,
      usedBlocks: blocksCount - freeBlocks,
      keptFiles,
      rewrittenFiles,
    },
  };
}

function ext4BitmapCsum(seed: number, bitmap: Buffer, bytes: number): number {
  return ext4Crc(seed, bitmap.subarray(0, bytes));
}

function toExtentsCount(runs: readonly Run[]): number {
  return toExtents(runs).length;
}

function runBlocks(r: Run): number[] {
  return Array.from({ length: r.length }, (_, i) => r.physical + i);
}

function mergeRuns(runs: Run[]): Run[] {
  runs.sort((a, b) => a.physical - b.physical);
  const out: Run[] = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last !== undefined && last.physical + last.length === r.physical)
      out[out.length - 1] = { ...last, length: last.length + r.length };
    else if (last === undefined || last.physical + last.length < r.physical) out.push({ ...r });
  }
  return out;
}
