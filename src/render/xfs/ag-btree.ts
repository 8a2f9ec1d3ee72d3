import { FerryError } from '../../errors/index.js';
import { setCrc } from './checksum.js';
import { BLOCK_SIZE, NULL_AGBLOCK } from './constants.js';
import type { XfsGeometry } from './geometry.js';

/**
 * The per-AG btrees (free space by block and by size, inodes, free inodes)
 * with their short (32-bit AG block) pointers: a 56-byte v5 header, then
 * records in a leaf, or keys and then pointers in a node. Records are
 * spread evenly over the blocks of a level, so every block but the root
 * holds at least half of what it can (xfs_repair checks that).
 */
const HEADER = 56;

export interface ShortBtreeSpec {
  readonly magic: number;
  readonly agno: number;
  readonly recSize: number;
  readonly keySize: number;
  /** Encoded records in key order. */
  readonly records: readonly Buffer[];
  /** The key of a record (the low key of a block is its first record's). */
  readonly keyOf: (rec: Buffer) => Buffer;
}

function splitEven<T>(items: readonly T[], max: number): T[][] {
  const n = Math.max(1, Math.ceil(items.length / max));
  const out: T[][] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const take = Math.floor((items.length - at) / (n - i));
    out.push(items.slice(at, at + take));
    at += take;
  }
  return out;
}

/** How many blocks a btree of `n` records takes. */
export function shortBtreeBlocks(n: number, recSize: number, keySize: number): number {
  const leafMax = Math.floor((BLOCK_SIZE - HEADER) / recSize);
  const nodeMax = Math.floor((BLOCK_SIZE - HEADER) / (keySize + 4));
  let count = Math.max(1, Math.ceil(n / leafMax));
  let total = count;
  while (count > 1) {
    count = Math.ceil(count / nodeMax);
    total += count;
  }
  return total;
}

/**
 * Encodes a btree into `blocks` (AG block numbers; the first is the root,
 * the rest, as many as shortBtreeBlocks says, hold the lower levels).
 * Returns the blocks by AG block number and the tree's height.
 */
export function buildShortBtree(
  spec: ShortBtreeSpec,
  blocks: readonly number[],
  geo: XfsGeometry,
  uuid: Buffer,
): { blocks: Map<number, Buffer>; levels: number } {
  const leafMax = Math.floor((BLOCK_SIZE - HEADER) / spec.recSize);
  const nodeMax = Math.floor((BLOCK_SIZE - HEADER) / (spec.keySize + 4));
  const out = new Map<number, Buffer>();
  const pool = blocks.slice(1);
  const take = (isRoot: boolean): number => {
    const b = isRoot ? blocks[0] : pool.shift();
    if (b === undefined)
      throw new FerryError('FERRY_INTERNAL', 'Cannot lay out an XFS btree: too few blocks');
    return b;
  };
  const header = (level: number, n: number, agbno: number): Buffer => {
    const b = Buffer.alloc(BLOCK_SIZE);
    b.writeUInt32BE(spec.magic, 0);
    b.writeUInt16BE(level, 4);
    b.writeUInt16BE(n, 6);
    b.writeUInt32BE(NULL_AGBLOCK, 8);
    b.writeUInt32BE(NULL_AGBLOCK, 12);
    b.writeBigUInt64BE(geo.daddr(geo.agStart(spec.agno) + agbno), 16);
    uuid.copy(b, 32);
    b.writeUInt32BE(spec.agno, 48);
    return b;
  };
  /** One level: its blocks' low keys and AG block numbers. */
  let level: { key: Buffer; agbno: number; buf: Buffer }[] = [];
  const groups = splitEven(spec.records, leafMax);
  const leafIsRoot = groups.length === 1;
  // The root is taken first, so lower levels get the rest in order.
  const rootBlock = take(true);
  let height = 1;
  for (const g of groups) {
    const agbno = leafIsRoot ? rootBlock : take(false);
    const buf = header(0, g.length, agbno);
    g.forEach((r, i) => {
      r.copy(buf, HEADER + i * spec.recSize);
    });
    level.push({
      key: g[0] === undefined ? Buffer.alloc(spec.keySize) : spec.keyOf(g[0]),
      agbno,
      buf,
    });
  }
  while (level.length > 1) {
    const parents = splitEven(level, nodeMax);
    const isRoot = parents.length === 1;
    const next: typeof level = [];
    for (const p of parents) {
      const agbno = isRoot ? rootBlock : take(false);
      const buf = header(height, p.length, agbno);
      p.forEach((c, i) => {
        c.key.copy(buf, HEADER + i * spec.keySize);
        buf.writeUInt32BE(c.agbno, HEADER + nodeMax * spec.keySize + i * 4);
      });
      next.push({ key: p[0]!.key, agbno, buf });
    }
    linkSiblings(level);
    for (const l of level) out.set(l.agbno, l.buf);
    level = next;
    height++;
  }
  for (const l of level) out.set(l.agbno, l.buf);
  for (const b of out.values()) setCrc(b, 52);
  return { blocks: out, levels: height };
}

function linkSiblings(level: readonly { agbno: number; buf: Buffer }[]): void {
  level.forEach((l, i) => {
    if (i > 0) l.buf.writeUInt32BE(level[i - 1]!.agbno, 8);
    if (i + 1 < level.length) l.buf.writeUInt32BE(level[i + 1]!.agbno, 12);
  });
}
