import { FerryError } from '../../errors/index.js';
import { setCrc } from './checksum.js';
import { BLOCK_SIZE, MAGIC, MAX_EXTENT_BLOCKS, NULL_FSBLOCK } from './constants.js';
import type { XfsGeometry } from './geometry.js';

/** A mapping of a fork: logical block `offset` onward at linear block `start`. */
export interface Extent {
  readonly offset: number;
  readonly start: number;
  readonly length: number;
}

/** Runs split at the longest extent a record holds. */
export function toExtents(runs: readonly Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const r of runs)
    for (let done = 0; done < r.length; done += MAX_EXTENT_BLOCKS)
      out.push({
        offset: r.offset + done,
        start: r.start + done,
        length: Math.min(MAX_EXTENT_BLOCKS, r.length - done),
      });
  return out;
}

/** A 16-byte bmbt record: flag, 54-bit offset, 52-bit fsblock, 21-bit count. */
export function encodeExtent(e: Extent, geo: XfsGeometry, to: Buffer, at: number): void {
  const off = BigInt(e.offset);
  const fsb = BigInt(geo.fsb(e.start));
  to.writeBigUInt64BE((off << 9n) | (fsb >> 43n), at);
  to.writeBigUInt64BE(((fsb & ((1n << 43n) - 1n)) << 21n) | BigInt(e.length), at + 8);
}

const HEADER = 72;
const PER_BLOCK = Math.floor((BLOCK_SIZE - HEADER) / 16);

/** The root's capacity in a fork of `forkBytes`: keys and pointers after a 4-byte header. */
function rootMax(forkBytes: number): number {
  return Math.floor((forkBytes - 4) / 16);
}

/** Blocks an extent btree of `n` extents takes outside the inode (0 when they fit in the fork). */
export function bmbtBlocks(n: number, forkBytes: number): number {
  if (n * 16 <= forkBytes) return 0;
  let count = Math.ceil(n / PER_BLOCK);
  let total = count;
  while (count > rootMax(forkBytes)) {
    count = Math.ceil(count / PER_BLOCK);
    total += count;
  }
  if (total > 1_000_000)
    throw new FerryError('FERRY_RENDER_LIMIT', 'Cannot lay out a file: it has too many extents');
  return total;
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

/**
 * A fork's mapping: the extent list in the fork when it fits, else a
 * btree whose root sits in the fork and whose other blocks go to `blocks`
 * (linear; as many as bmbtBlocks says). Returns the fork bytes, whether it
 * is a btree, and the btree blocks by linear block number.
 */
export function encodeFork(
  extents: readonly Extent[],
  forkBytes: number,
  blocks: readonly number[],
  owner: number,
  geo: XfsGeometry,
  uuid: Buffer,
): { fork: Buffer; btree: boolean; blocks: Map<number, Buffer> } {
  const fork = Buffer.alloc(forkBytes);
  const out = new Map<number, Buffer>();
  if (extents.length * 16 <= forkBytes) {
    extents.forEach((e, i) => {
      encodeExtent(e, geo, fork, i * 16);
    });
    return { fork, btree: false, blocks: out };
  }
  const pool = [...blocks];
  const header = (level: number, n: number, linear: number): Buffer => {
    const b = Buffer.alloc(BLOCK_SIZE);
    b.writeUInt32BE(MAGIC.bmap, 0);
    b.writeUInt16BE(level, 4);
    b.writeUInt16BE(n, 6);
    b.writeBigUInt64BE(NULL_FSBLOCK, 8);
    b.writeBigUInt64BE(NULL_FSBLOCK, 16);
    b.writeBigUInt64BE(geo.daddr(linear), 24);
    uuid.copy(b, 40);
    b.writeBigUInt64BE(BigInt(owner), 56);
    return b;
  };
  let level: { key: number; linear: number; buf: Buffer }[] = [];
  for (const g of splitEven(extents, PER_BLOCK)) {
    const linear = pool.shift()!;
    const buf = header(0, g.length, linear);
    g.forEach((e, i) => {
      encodeExtent(e, geo, buf, HEADER + i * 16);
    });
    level.push({ key: g[0]!.offset, linear, buf });
  }
  let height = 1;
  const rmax = rootMax(forkBytes);
  for (;;) {
    level.forEach((l, i) => {
      if (i > 0) l.buf.writeBigUInt64BE(BigInt(geo.fsb(level[i - 1]!.linear)), 8);
      if (i + 1 < level.length) l.buf.writeBigUInt64BE(BigInt(geo.fsb(level[i + 1]!.linear)), 16);
      setCrc(l.buf, 64);
      out.set(l.linear, l.buf);
    });
    if (level.length <= rmax) break;
    const next: typeof level = [];
    for (const p of splitEven(level, PER_BLOCK)) {
      const linear = pool.shift()!;
      const buf = header(height, p.length, linear);
      p.forEach((c, i) => {
        buf.writeBigUInt64BE(BigInt(c.key), HEADER + i * 8);
        buf.writeBigUInt64BE(BigInt(geo.fsb(c.linear)), HEADER + PER_BLOCK * 8 + i * 8);
      });
      next.push({ key: p[0]!.key, linear, buf });
    }
    level = next;
    height++;
  }
  fork.writeUInt16BE(height, 0);
  fork.writeUInt16BE(level.length, 2);
  level.forEach((c, i) => {
    fork.writeBigUInt64BE(BigInt(c.key), 4 + i * 8);
    fork.writeBigUInt64BE(BigInt(geo.fsb(c.linear)), 4 + rmax * 8 + i * 8);
  });
  return { fork, btree: true, blocks: out };
}
