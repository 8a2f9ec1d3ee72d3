import { FerryError } from '../../../errors/index.js';
import { COMPRESSED_SECTOR, MAX_HOST_OFFSET, SUBCLUSTERS } from './constants.js';
import type { Qcow2Header } from './header.js';

/** What an L2 entry maps its guest cluster to. */
export const KIND_HOLE = 0;
export const KIND_ZERO = 1;
export const KIND_DATA = 2;
export const KIND_COMPRESSED = 3;
/** Extended L2 only: subclusters of different kinds (see the bitmaps). */
export const KIND_MIXED = 4;

/** A decoded, validated L2 table. */
export interface L2Table {
  /** KIND_* per entry. */
  readonly kind: Uint8Array;
  /** KIND_DATA/KIND_MIXED: host offset of the cluster; KIND_COMPRESSED: first byte of its data. */
  readonly host: Float64Array;
  /** KIND_COMPRESSED: bytes of compressed data present in the file. */
  readonly clen: Uint32Array | undefined;
  /** KIND_MIXED: subcluster allocation and zero bitmaps. */
  readonly alloc: Uint32Array | undefined;
  readonly zero: Uint32Array | undefined;
  /** Memory the decoded table holds, for the cache budget. */
  readonly bytes: number;
}

/** What table validation needs to know about the image. */
export interface TableContext {
  readonly header: Qcow2Header;
  readonly fileSize: number;
  readonly name: string;
}

const TWO32 = 2 ** 32;

function bad(ctx: TableContext, reason: string, details: Record<string, number>): never {
  throw new FerryError('FERRY_QCOW2_BAD_TABLE', `Cannot read qcow2 image ${ctx.name}: ${reason}`, {
    details,
  });
}

function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  return a < b + blen && b < a + alen;
}

/**
 * Decodes the L1 table into L2 table offsets (0 = unallocated), validating
 * the entries the virtual size uses: reserved bits clear, cluster aligned,
 * inside the file, and never overlapping the header, the L1 table itself or
 * the refcount table (which is how a self-referencing table would show).
 */
export function decodeL1(buf: Buffer, ctx: TableContext): Float64Array {
  const h = ctx.header;
  const cs = h.clusterSize;
  const out = new Float64Array(h.l1Needed);
  for (let i = 0; i < h.l1Needed; i++) {
    const hi = buf.readUInt32BE(i * 8);
    const lo = buf.readUInt32BE(i * 8 + 4);
    if ((lo & 0x1ff) !== 0 || (hi & 0x7f000000) !== 0) {
      bad(ctx, `L1 entry ${i} has reserved bits set`, { index: i });
    }
    const off = (hi & 0xffffff) * TWO32 + (lo - (lo & 0x1ff));
    if (off === 0) continue;
    if (off % cs !== 0)
      bad(ctx, `L1 entry ${i} points at an unaligned L2 table`, { index: i, off });
    if (off + cs > ctx.fileSize) {
      bad(ctx, `L1 entry ${i} points past the end of the file`, { index: i, off });
    }
    if (
      overlaps(off, cs, 0, cs) ||
      overlaps(off, cs, h.l1TableOffset, h.l1Size * 8) ||
      overlaps(off, cs, h.refcountTableOffset, h.refcountTableClusters * cs)
    ) {
      bad(ctx, `L1 entry ${i} points its L2 table at the header, L1 or refcount table`, {
        index: i,
        off,
      });
    }
    out[i] = off;
  }
  return out;
}

/**
 * Decodes and validates the L2 table of L1 entry `l1Index`. Entries for
 * clusters past the virtual size are ignored. A data cluster must lie inside
 * the file (only its part inside the virtual disk, so a short last cluster is fine).
 */
export function decodeL2(buf: Buffer, l1Index: number, ctx: TableContext): L2Table {
  const h = ctx.header;
  const cs = h.clusterSize;
  const entries = h.l2Entries;
  const first = l1Index * entries;
  const totalClusters = Math.ceil(h.size / cs);
  const used = Math.max(0, Math.min(entries, totalClusters - first));
  const ext = h.extendedL2;
  const step = ext ? 16 : 8;
  const scSize = cs / SUBCLUSTERS;
  const kind = new Uint8Array(used);
  const host = new Float64Array(used);
  let clen: Uint32Array | undefined;
  const alloc = ext ? new Uint32Array(used) : undefined;
  const zero = ext ? new Uint32Array(used) : undefined;
  // Compressed descriptor layout: offset in bits 0..x-1, extra sectors in x..61.
  const x = 62 - (h.clusterBits - 8);
  const offHiBits = x - 32;
  const sectMask = 2 ** (h.clusterBits - 8) - 1;

  for (let j = 0; j < used; j++) {
    const at = j * step;
    const hi = buf.readUInt32BE(at);
    const lo = buf.readUInt32BE(at + 4);
    const guest = (first + j) * cs;
    const needed = Math.min(cs, h.size - guest);

    if ((hi & 0x40000000) !== 0) {
      const off = (hi & (2 ** offHiBits - 1)) * TWO32 + lo;
      const extra = Math.floor((hi & 0x3fffffff) / 2 ** offHiBits) & sectMask;
      if (off === 0 || off >= MAX_HOST_OFFSET || off >= ctx.fileSize) {
        bad(ctx, `the compressed cluster at guest offset ${guest} points outside the file`, {
          guest,
          off,
        });
      }
      const end = (Math.floor(off / COMPRESSED_SECTOR) + extra + 1) * COMPRESSED_SECTOR;
      clen ??= new Uint32Array(used);
      kind[j] = KIND_COMPRESSED;
      host[j] = off;
      clen[j] = Math.min(end, ctx.fileSize) - off;
      continue;
    }

    // Bit 0 (reads as zero) exists only in version 3 without extended L2;
    // qemu treats it as corruption in a version 2 image.
    const reservedLo = ext || h.version === 2 ? 0x1ff : 0x1fe;
    if ((lo & reservedLo) !== 0 || (hi & 0x3f000000) !== 0) {
      bad(ctx, `the L2 entry for guest offset ${guest} has reserved bits set`, { guest });
    }
    const off = (hi & 0xffffff) * TWO32 + (lo - (lo & 0x1ff));
    if (off % cs !== 0) {
      bad(ctx, `the L2 entry for guest offset ${guest} is not cluster aligned`, { guest, off });
    }

    if (!ext) {
      if ((lo & 1) !== 0) {
        kind[j] = KIND_ZERO;
      } else if (off !== 0) {
        if (off + needed > ctx.fileSize) {
          bad(ctx, `the cluster at guest offset ${guest} lies past the end of the file`, {
            guest,
            off,
          });
        }
        kind[j] = KIND_DATA;
        host[j] = off;
      }
      continue;
    }

    const zbits = buf.readUInt32BE(at + 8);
    const abits = buf.readUInt32BE(at + 12);
    if ((zbits & abits) !== 0) {
      bad(ctx, `the L2 entry for guest offset ${guest} marks subclusters both zero and allocated`, {
        guest,
      });
    }
    if (off === 0 && abits !== 0) {
      bad(ctx, `the L2 entry for guest offset ${guest} allocates subclusters without a cluster`, {
        guest,
      });
    }
    if (abits !== 0) {
      // The highest allocated subcluster within the virtual disk must be in the file.
      const top = 31 - Math.clz32(abits);
      const end = Math.min((top + 1) * scSize, needed);
      if (off + end > ctx.fileSize) {
        bad(ctx, `the cluster at guest offset ${guest} lies past the end of the file`, {
          guest,
          off,
        });
      }
    }
    host[j] = off;
    if (abits === 0 && zbits === 0) kind[j] = KIND_HOLE;
    else if (abits === 0xffffffff) kind[j] = KIND_DATA;
    else if (zbits === 0xffffffff) kind[j] = KIND_ZERO;
    else {
      kind[j] = KIND_MIXED;
      alloc![j] = abits;
      zero![j] = zbits;
    }
  }
  const bytes =
    64 + used * 9 + (clen === undefined ? 0 : used * 4) + (alloc === undefined ? 0 : used * 8);
  return { kind, host, clen, alloc, zero, bytes };
}
