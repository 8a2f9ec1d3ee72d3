import { FerryError } from '../../errors/index.js';
import { setCrc } from './checksum.js';
import { BLOCK_SIZE, FTYPE, MAGIC } from './constants.js';
import { daHash } from './da-hash.js';

/**
 * XFS v5 directories in each form their size asks for: short form inside
 * the inode, then one block (entries and their hash index together), then
 * "leaf" (data blocks and one hash index block with the data blocks' free
 * space), then "node" (a dabtree node over hash index leaves, and free
 * index blocks). Data blocks hold ".", ".." and the entries in manifest
 * order; a block's unused tail is one free entry, its bestfree[0].
 */
export interface DirEntrySpec {
  readonly name: Buffer;
  readonly ino: number;
  readonly ftype: number;
}

/** One directory block at a logical block of the fork, finished once its place is known. */
export interface DirBlock {
  readonly logical: number;
  readonly build: (daddr: bigint) => Buffer;
}

export type DirLayout =
  | { readonly kind: 'short'; readonly fork: Buffer; readonly size: number }
  | { readonly kind: 'blocks'; readonly size: number; readonly blocks: readonly DirBlock[] };

const DATA_HEADER = 64;
const LEAF_HEADER = 64;
/** Logical blocks where the hash index and the free index start (32 GiB and 64 GiB into the fork). */
export const LEAF_FIRST_BLOCK = 2 ** 35 / BLOCK_SIZE;
export const FREE_FIRST_BLOCK = 2 ** 36 / BLOCK_SIZE;
const NODE_ENTRIES = (BLOCK_SIZE - 64) / 8;
const LEAFN_ENTRIES = (BLOCK_SIZE - LEAF_HEADER) / 8;
const FREE_ENTRIES = (BLOCK_SIZE - 64) / 2;
/** Offset of the first entry after "." and ".." in a data block (what short form offsets start from). */
const FIRST_OFFSET = DATA_HEADER + 16 + 16;

const entSize = (nameLen: number): number => Math.ceil((12 + nameLen) / 8) * 8;

function limit(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_LIMIT', `Cannot lay out a directory: ${reason}`);
}

/** The short form: count, 4-byte parent, then length, offset, name, type, 4-byte inode per entry. */
function shortForm(entries: readonly DirEntrySpec[], parent: number): Buffer | null {
  if (entries.length > 255) return null;
  const parts: Buffer[] = [];
  const h = Buffer.alloc(6);
  h[0] = entries.length;
  h.writeUInt32BE(parent, 2);
  parts.push(h);
  let offset = FIRST_OFFSET;
  for (const e of entries) {
    const b = Buffer.alloc(3 + e.name.length + 1 + 4);
    b[0] = e.name.length;
    b.writeUInt16BE(offset, 1);
    e.name.copy(b, 3);
    b[3 + e.name.length] = e.ftype;
    b.writeUInt32BE(e.ino, 4 + e.name.length);
    parts.push(b);
    offset += entSize(e.name.length);
  }
  if (offset > BLOCK_SIZE) return null;
  return Buffer.concat(parts);
}

interface Placed {
  readonly e: DirEntrySpec;
  readonly block: number;
  readonly offset: number;
}

function writeEntry(b: Buffer, at: number, e: DirEntrySpec): void {
  b.writeBigUInt64BE(BigInt(e.ino), at);
  b[at + 8] = e.name.length;
  e.name.copy(b, at + 9);
  b[at + 9 + e.name.length] = e.ftype;
  b.writeUInt16BE(at, at + entSize(e.name.length) - 2);
}

/** Marks [at, end) free and records it as the block's best free region. */
function writeFree(b: Buffer, at: number, end: number): number {
  const len = end - at;
  if (len <= 0) return 0;
  b.writeUInt16BE(0xffff, at);
  b.writeUInt16BE(len, at + 2);
  b.writeUInt16BE(at, end - 2);
  b.writeUInt16BE(at, 48);
  b.writeUInt16BE(len, 50);
  return len;
}

/** The v5 directory block header: magic, (CRC), blkno, (LSN), UUID, owner. */
function dirHeader(b: Buffer, magic: number, daddr: bigint, uuid: Buffer, owner: number): void {
  b.writeUInt32BE(magic, 0);
  b.writeBigUInt64BE(daddr, 8);
  uuid.copy(b, 24);
  b.writeBigUInt64BE(BigInt(owner), 40);
}

/** The v5 dabtree block header (leaf and node blocks): siblings, magic, blkno, UUID, owner. */
function daHeader(
  b: Buffer,
  magic: number,
  forw: number,
  back: number,
  daddr: bigint,
  uuid: Buffer,
  owner: number,
): void {
  b.writeUInt32BE(forw, 0);
  b.writeUInt32BE(back, 4);
  b.writeUInt16BE(magic, 8);
  b.writeBigUInt64BE(daddr, 16);
  uuid.copy(b, 32);
  b.writeBigUInt64BE(BigInt(owner), 48);
}

/** Lays out a directory of `entries` (without "." and "..") owned by inode `self`. */
export function layoutDirectory(
  entries: readonly DirEntrySpec[],
  self: number,
  parent: number,
  forkBytes: number,
  uuid: Buffer,
): DirLayout {
  const sf = shortForm(entries, parent);
  if (sf !== null && sf.length <= forkBytes) return { kind: 'short', fork: sf, size: sf.length };
  const all: DirEntrySpec[] = [
    { name: Buffer.from('.'), ino: self, ftype: FTYPE.dir },
    { name: Buffer.from('..'), ino: parent, ftype: FTYPE.dir },
    ...entries,
  ];
  const hashes = all.map((e) => daHash(e.name));
  const dataBytes = all.reduce((n, e) => n + entSize(e.name.length), 0);

  // One block: entries, then the hash index and its tail.
  if (DATA_HEADER + dataBytes + 8 * all.length + 8 <= BLOCK_SIZE) {
    const build = (daddr: bigint): Buffer => {
      const b = Buffer.alloc(BLOCK_SIZE);
      dirHeader(b, MAGIC.dirBlock, daddr, uuid, self);
      let at = DATA_HEADER;
      const leaf: { hash: number; addr: number }[] = [];
      all.forEach((e, i) => {
        writeEntry(b, at, e);
        leaf.push({ hash: hashes[i]!, addr: at / 8 });
        at += entSize(e.name.length);
      });
      const leafAt = BLOCK_SIZE - 8 - 8 * all.length;
      writeFree(b, at, leafAt);
      sortLeaf(leaf).forEach((l, i) => {
        b.writeUInt32BE(l.hash, leafAt + i * 8);
        b.writeUInt32BE(l.addr, leafAt + i * 8 + 4);
      });
      b.writeUInt32BE(all.length, BLOCK_SIZE - 8);
      setCrc(b, 4);
      return b;
    };
    return { kind: 'blocks', size: BLOCK_SIZE, blocks: [{ logical: 0, build }] };
  }

  // Data blocks, filled in order.
  const placed: Placed[] = [];
  const used: number[] = [];
  let block = 0;
  let at = DATA_HEADER;
  for (const e of all) {
    const s = entSize(e.name.length);
    if (at + s > BLOCK_SIZE) {
      used.push(at);
      block++;
      at = DATA_HEADER;
    }
    placed.push({ e, block, offset: at });
    at += s;
  }
  used.push(at);
  const ndata = block + 1;
  const best = used.map((u) => BLOCK_SIZE - u);
  const byBlock: Placed[][] = Array.from({ length: ndata }, () => []);
  for (const p of placed) byBlock[p.block]!.push(p);
  const blocks: DirBlock[] = [];
  for (let d = 0; d < ndata; d++) {
    const mine = byBlock[d]!;
    blocks.push({
      logical: d,
      build: (daddr) => {
        const b = Buffer.alloc(BLOCK_SIZE);
        dirHeader(b, MAGIC.dirData, daddr, uuid, self);
        for (const p of mine) writeEntry(b, p.offset, p.e);
        writeFree(b, used[d]!, BLOCK_SIZE);
        setCrc(b, 4);
        return b;
      },
    });
  }
  const leafEnts = sortLeaf(
    placed.map((p, i) => ({ hash: hashes[i]!, addr: (p.block * BLOCK_SIZE + p.offset) / 8 })),
  );
  const putEnts = (b: Buffer, ents: readonly { hash: number; addr: number }[]): void => {
    b.writeUInt16BE(ents.length, 56);
    ents.forEach((l, i) => {
      b.writeUInt32BE(l.hash, LEAF_HEADER + i * 8);
      b.writeUInt32BE(l.addr, LEAF_HEADER + i * 8 + 4);
    });
  };

  // Leaf form: one hash index block with the data blocks' best free space at its end.
  if (LEAF_HEADER + 8 * leafEnts.length + 2 * ndata + 4 <= BLOCK_SIZE) {
    blocks.push({
      logical: LEAF_FIRST_BLOCK,
      build: (daddr) => {
        const b = Buffer.alloc(BLOCK_SIZE);
        daHeader(b, MAGIC.dirLeaf1, 0, 0, daddr, uuid, self);
        putEnts(b, leafEnts);
        best.forEach((v, i) => {
          b.writeUInt16BE(v, BLOCK_SIZE - 4 - 2 * (ndata - i));
        });
        b.writeUInt32BE(ndata, BLOCK_SIZE - 4);
        setCrc(b, 12);
        return b;
      },
    });
    return { kind: 'blocks', size: ndata * BLOCK_SIZE, blocks };
  }

  // Node form: a node over hash index leaves, and free index blocks.
  const nleaves = Math.ceil(leafEnts.length / LEAFN_ENTRIES);
  if (nleaves > NODE_ENTRIES)
    throw limit(`${entries.length} entries need more than one level of index nodes`);
  const groups: { hash: number; addr: number }[][] = [];
  let from = 0;
  for (let i = 0; i < nleaves; i++) {
    const take = Math.floor((leafEnts.length - from) / (nleaves - i));
    groups.push(leafEnts.slice(from, from + take));
    from += take;
  }
  blocks.push({
    logical: LEAF_FIRST_BLOCK,
    build: (daddr) => {
      const b = Buffer.alloc(BLOCK_SIZE);
      daHeader(b, MAGIC.daNode, 0, 0, daddr, uuid, self);
      b.writeUInt16BE(groups.length, 56);
      b.writeUInt16BE(1, 58); // level
      groups.forEach((g, i) => {
        b.writeUInt32BE(g[g.length - 1]!.hash, 64 + i * 8);
        b.writeUInt32BE(LEAF_FIRST_BLOCK + 1 + i, 64 + i * 8 + 4);
      });
      setCrc(b, 12);
      return b;
    },
  });
  groups.forEach((g, i) => {
    const logical = LEAF_FIRST_BLOCK + 1 + i;
    blocks.push({
      logical,
      build: (daddr) => {
        const b = Buffer.alloc(BLOCK_SIZE);
        const forw = i + 1 < groups.length ? logical + 1 : 0;
        const back = i > 0 ? logical - 1 : 0;
        daHeader(b, MAGIC.dirLeafN, forw, back, daddr, uuid, self);
        putEnts(b, g);
        setCrc(b, 12);
        return b;
      },
    });
  });
  for (let f = 0; f * FREE_ENTRIES < ndata; f++) {
    const first = f * FREE_ENTRIES;
    const mine = best.slice(first, first + FREE_ENTRIES);
    blocks.push({
      logical: FREE_FIRST_BLOCK + f,
      build: (daddr) => {
        const b = Buffer.alloc(BLOCK_SIZE);
        dirHeader(b, MAGIC.dirFree, daddr, uuid, self);
        b.writeInt32BE(first, 48);
        b.writeInt32BE(mine.length, 52);
        b.writeInt32BE(mine.length, 56);
        mine.forEach((v, i) => {
          b.writeUInt16BE(v, 64 + i * 2);
        });
        setCrc(b, 4);
        return b;
      },
    });
  }
  return { kind: 'blocks', size: ndata * BLOCK_SIZE, blocks };
}

function sortLeaf<T extends { hash: number; addr: number }>(ents: T[]): T[] {
  return ents.sort((a, b) => a.hash - b.hash || a.addr - b.addr);
}
