import { createHash } from 'node:crypto';

/** A snapshot's blocks: [block index, SHA-256 hex], sorted by index, indexes unique. */
export type BlockMap = ReadonlyArray<readonly [number, string]>;

const MAGIC = Buffer.from('FEBSMAP1', 'latin1');
const ENTRY = 36;

/**
 * The file that holds the blocks a completed snapshot put itself (not its
 * parent's): "FEBSMAP1", a u32 count, count entries of a u32 index and a
 * 32-byte digest in index order, then the SHA-256 of all that.
 */
export function encodeBlockMap(map: BlockMap): Buffer {
  const b = Buffer.alloc(MAGIC.length + 4 + map.length * ENTRY + 32);
  MAGIC.copy(b, 0);
  b.writeUInt32BE(map.length, 8);
  let o = 12;
  for (const [index, digest] of map) {
    b.writeUInt32BE(index, o);
    b.write(digest, o + 4, 32, 'hex');
    o += ENTRY;
  }
  createHash('sha256').update(b.subarray(0, o)).digest().copy(b, o);
  return b;
}

/** Decodes a block map file; null when it is not one, or is damaged. */
export function decodeBlockMap(b: Buffer): BlockMap | null {
  if (b.length < 44 || !b.subarray(0, 8).equals(MAGIC)) return null;
  const n = b.readUInt32BE(8);
  const end = 12 + n * ENTRY;
  if (b.length !== end + 32) return null;
  if (!createHash('sha256').update(b.subarray(0, end)).digest().equals(b.subarray(end))) {
    return null;
  }
  const out: Array<readonly [number, string]> = [];
  let last = -1;
  for (let o = 12; o < end; o += ENTRY) {
    const index = b.readUInt32BE(o);
    if (index <= last) return null;
    last = index;
    out.push([index, b.toString('hex', o + 4, o + ENTRY)]);
  }
  return out;
}

/** A map from a Map of index to digest. */
export function sortedMap(m: ReadonlyMap<number, string>): BlockMap {
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

/** `over` laid over `base`: what a child snapshot reads, given its parent's blocks and its own. */
export function overlay(base: BlockMap, over: BlockMap): BlockMap {
  const out: Array<readonly [number, string]> = [];
  let i = 0;
  let j = 0;
  while (i < base.length || j < over.length) {
    const a = base[i];
    const b = over[j];
    if (b === undefined || (a !== undefined && a[0] < b[0])) {
      out.push(a!);
      i++;
    } else {
      if (a !== undefined && a[0] === b[0]) i++;
      out.push(b);
      j++;
    }
  }
  return out;
}

/** One differing index of two maps, with each side's digest (absent where that side has no block). */
export interface BlockDifference {
  readonly index: number;
  readonly first?: string;
  readonly second?: string;
}

/** The indexes whose contents differ between two maps, in index order. */
export function differences(first: BlockMap, second: BlockMap): BlockDifference[] {
  const out: BlockDifference[] = [];
  let i = 0;
  let j = 0;
  while (i < first.length || j < second.length) {
    const a = first[i];
    const b = second[j];
    if (b === undefined || (a !== undefined && a[0] < b[0])) {
      out.push({ index: a![0], first: a![1] });
      i++;
    } else if (a === undefined || b[0] < a[0]) {
      out.push({ index: b[0], second: b[1] });
      j++;
    } else {
      if (a[1] !== b[1]) out.push({ index: a[0], first: a[1], second: b[1] });
      i++;
      j++;
    }
  }
  return out;
}

/**
 * CompleteSnapshot's LINEAR aggregate: SHA-256 over the binary SHA-256 of
 * every block the snapshot put, in ascending block index order, in base64.
 */
export function linearChecksum(own: BlockMap): string {
  const h = createHash('sha256');
  for (const [, digest] of own) h.update(Buffer.from(digest, 'hex'));
  return h.digest('base64');
}

/** The position of the first entry whose index is >= `index`. */
export function lowerBound(map: BlockMap, index: number): number {
  let lo = 0;
  let hi = map.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (map[mid]![0] < index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
