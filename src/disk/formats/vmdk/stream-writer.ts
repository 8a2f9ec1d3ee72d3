import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { deflate } from 'node:zlib';
import { FerryError } from '../../../errors/index.js';
import { LIMITS } from '../../limits.js';
import type { OutputFile } from '../../output-file.js';
import { WriteQueue } from '../../write-queue.js';
import { isZero } from '../../zero.js';
import {
  COMPRESSION_DEFLATE,
  FLAG_COMPRESSED,
  FLAG_MARKERS,
  FLAG_VALID_NEWLINE,
  GRAIN_MARKER_HEADER,
  MARKER_FOOTER,
  MARKER_GD,
  MARKER_GT,
  SECTOR,
  WRITE_DESCRIPTOR_SECTORS,
  WRITE_GRAIN_SECTORS,
  WRITE_GTES_PER_GT,
  WRITE_OVERHEAD_SECTORS,
} from './constants.js';
import { buildStreamDescriptor } from './descriptor.js';
import { encodeSparseHeader, type HeaderFields } from './header.js';

const deflateAsync = promisify(deflate);

/** Grains being compressed at once (64 KiB each; the thread pool runs four at a time by default). */
const GRAINS_IN_FLIGHT = 32;
/**
 * zlib level for grains. qemu-img uses Z_DEFAULT_COMPRESSION (6). Measured on
 * 64 KiB grains of an ext4 image of /usr/lib (740 MB of data), level 2 needs
 * half the CPU of level 6 (2x faster per core on binaries, 3x on text) for a
 * file 6% larger; incompressible data costs the same at every level. Any
 * level is valid zlib: readers (qemu, VMware, AWS) only inflate.
 */
export const DEFAULT_GRAIN_LEVEL = 2;
/** Placed output gathered into one writev. */
const BATCH_BYTES = 1024 * 1024;
const BATCH_BUFFERS = 256;
/** Grain table entries and directory entries are u32 sector numbers. */
const MAX_SECTOR = 2 ** 32 - 1;

export interface VmdkStreamWriterOptions {
  /** File name in the descriptor's extent line (default: the base name of the output path). */
  readonly extentName?: string;
  /** ddb.adapterType (default "lsilogic", what AWS and VMware expect in OVAs). */
  readonly adapterType?: string;
  /** zlib level for grains, 0-9 or -1 (default DEFAULT_GRAIN_LEVEL). */
  readonly level?: number;
}

interface PendingGrain {
  readonly grain: number;
  readonly packed: Promise<Buffer>;
}

function marker(sectors: number, type: number): Buffer {
  const m = Buffer.alloc(SECTOR);
  m.writeBigUInt64LE(BigInt(sectors), 0);
  // 8: size 0 (a metadata marker), 12: type.
  m.writeUInt32LE(type, 12);
  return m;
}

/**
 * Writes a stream-optimized VMDK (what VMware and AWS VM Import expect) into
 * `out` from `baseOffset` on, front to back: header and embedded descriptor
 * (grain directory "at end"), then for each non-zero 64 KiB grain a grain
 * marker with its zlib-compressed data padded to a sector, a GT marker and
 * grain table after each table's range, and finally the GD marker and grain
 * directory, the footer marker and footer (the header with the real
 * directory offset) and the end-of-stream marker.
 *
 * `write` takes increasing offsets (any alignment; the converter sends
 * 2 MiB chunks); unwritten ranges read as zeros. Grains compress on the
 * libuv thread pool, several at once, and are placed in order. The writer
 * keeps references to the buffers passed to `write` until their grains are
 * compressed, so callers must not modify them afterwards. Memory: the grain
 * directory (4 bytes per 32 MiB of disk), one grain table and the grains in flight.
 */
export class VmdkStreamWriter {
  /** Virtual size written: the requested size rounded up to a sector. */
  readonly virtualSize: number;
  /** Capacity in sectors. */
  readonly capacity: number;
  readonly #out: OutputFile;
  readonly #base: number;
  readonly #grainBytes = WRITE_GRAIN_SECTORS * SECTOR;
  readonly #level: number;
  readonly #extentName: string;
  readonly #adapterType: string;
  readonly #gd: Buffer;
  readonly #gdEntries: number;
  #gt: Buffer | undefined;
  #gtIndex = -1;
  /** Next free byte of the stream, relative to the base offset. */
  #pos = WRITE_OVERHEAD_SECTORS * SECTOR;
  /** Lowest virtual offset the next write may start at. */
  #next = 0;
  #partial: { grain: number; buf: Buffer } | undefined;
  readonly #queue: PendingGrain[] = [];
  #batch: Buffer[] = [];
  #batchStart = 0;
  #batchBytes = 0;
  /** Host writes under way, with background writeback. */
  readonly #writes: WriteQueue;
  #finished = false;

  constructor(
    out: OutputFile,
    baseOffset: number,
    virtualSize: number,
    options: VmdkStreamWriterOptions = {},
  ) {
    if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0) {
      throw new FerryError(
        'FERRY_USAGE',
        'Cannot write vmdk image: the virtual size must be positive',
        {
          details: { virtualSize },
        },
      );
    }
    if (virtualSize > LIMITS.maxVirtualSize) {
      throw new FerryError('FERRY_IMAGE_TOO_LARGE', 'Cannot write vmdk image: over 64 TiB', {
        details: { virtualSize },
      });
    }
    if (!Number.isSafeInteger(baseOffset) || baseOffset < 0) {
      throw new FerryError('FERRY_INTERNAL', 'Cannot write vmdk image: invalid base offset', {
        details: { baseOffset },
      });
    }
    const level = options.level ?? DEFAULT_GRAIN_LEVEL;
    if (!Number.isInteger(level) || level < -1 || level > 9) {
      throw new FerryError(
        'FERRY_USAGE',
        'Cannot write vmdk image: the zlib level must be -1 to 9',
        {
          details: { level },
        },
      );
    }
    this.#out = out;
    this.#writes = new WriteQueue(out);
    this.#base = baseOffset;
    this.capacity = Math.ceil(virtualSize / SECTOR);
    this.virtualSize = this.capacity * SECTOR;
    this.#level = level;
    this.#extentName = options.extentName ?? basename(out.path);
    this.#adapterType = options.adapterType ?? 'lsilogic';
    this.#gdEntries = Math.ceil(this.capacity / (WRITE_GRAIN_SECTORS * WRITE_GTES_PER_GT));
    this.#gd = Buffer.alloc(Math.ceil((this.#gdEntries * 4) / SECTOR) * SECTOR);
  }

  /** Writes `data` at virtual offset `offset` (offsets must not go backwards). */
  async write(offset: number, data: Buffer): Promise<void> {
    if (
      this.#finished ||
      !Number.isSafeInteger(offset) ||
      offset < this.#next ||
      offset + data.length > this.virtualSize
    ) {
      throw new FerryError(
        'FERRY_INTERNAL',
        'Cannot write vmdk image: write out of order or range',
        {
          details: { offset, length: data.length, next: this.#next, size: this.virtualSize },
        },
      );
    }
    const end = offset + data.length;
    this.#next = end;
    const gb = this.#grainBytes;
    let pos = offset;
    while (pos < end) {
      const grain = Math.floor(pos / gb);
      const gStart = grain * gb;
      const gEnd = Math.min(gStart + gb, this.virtualSize);
      const take = Math.min(end, gEnd) - pos;
      const piece = data.subarray(pos - offset, pos - offset + take);
      if (this.#partial !== undefined && this.#partial.grain !== grain) await this.#flushPartial();
      if (this.#partial === undefined && pos === gStart && take === gEnd - gStart) {
        await this.#submit(grain, piece);
      } else {
        if (this.#partial === undefined) this.#partial = { grain, buf: Buffer.alloc(gb) };
        piece.copy(this.#partial.buf, pos - gStart);
        if (pos + take === gEnd) await this.#flushPartial();
      }
      pos += take;
    }
  }

  async #flushPartial(): Promise<void> {
    const p = this.#partial;
    if (p === undefined) return;
    this.#partial = undefined;
    await this.#submit(p.grain, p.buf);
  }

  /** Starts compressing one grain (all-zero grains are left out) and places finished ones. */
  async #submit(grain: number, raw: Buffer): Promise<void> {
    if (isZero(raw)) return;
    let full = raw;
    if (raw.length < this.#grainBytes) {
      // The last grain of a disk that is not a whole number of grains: pad it.
      full = Buffer.alloc(this.#grainBytes);
      raw.copy(full);
    }
    const packed = deflateAsync(full, { level: this.#level, chunkSize: this.#grainBytes });
    packed.catch(() => {});
    this.#queue.push({ grain, packed });
    while (this.#queue.length > GRAINS_IN_FLIGHT) await this.#placeNext();
  }

  /** Appends the oldest compressed grain to the stream and records it in its grain table. */
  async #placeNext(): Promise<void> {
    const item = this.#queue.shift();
    if (item === undefined) return;
    const packed = await item.packed;
    const gtIndex = Math.floor(item.grain / WRITE_GTES_PER_GT);
    if (gtIndex !== this.#gtIndex) {
      await this.#flushGrainTable();
      this.#gt = Buffer.alloc(WRITE_GTES_PER_GT * 4);
      this.#gtIndex = gtIndex;
    }
    const total = Math.ceil((GRAIN_MARKER_HEADER + packed.length) / SECTOR) * SECTOR;
    const buf = Buffer.allocUnsafe(total);
    buf.writeBigUInt64LE(BigInt(item.grain * WRITE_GRAIN_SECTORS), 0);
    buf.writeUInt32LE(packed.length, 8);
    packed.copy(buf, GRAIN_MARKER_HEADER);
    buf.fill(0, GRAIN_MARKER_HEADER + packed.length);
    this.#gt!.writeUInt32LE(this.#sector(this.#pos), (item.grain % WRITE_GTES_PER_GT) * 4);
    await this.#append(buf);
  }

  #sector(pos: number): number {
    const s = pos / SECTOR;
    if (s > MAX_SECTOR) {
      throw new FerryError(
        'FERRY_IMAGE_TOO_LARGE',
        'Cannot write vmdk image: the stream grew past 2 TiB, the limit of 32-bit sector numbers',
        { details: { bytes: pos } },
      );
    }
    return s;
  }

  /** Writes the current grain table (GT marker + table) and points the directory at it. */
  async #flushGrainTable(): Promise<void> {
    const gt = this.#gt;
    if (gt === undefined) return;
    this.#gt = undefined;
    const sectors = gt.length / SECTOR;
    await this.#append(marker(sectors, MARKER_GT));
    this.#gd.writeUInt32LE(this.#sector(this.#pos), this.#gtIndex * 4);
    await this.#append(gt);
  }

  async #append(buf: Buffer): Promise<void> {
    if (this.#batch.length === 0) this.#batchStart = this.#pos;
    this.#batch.push(buf);
    this.#batchBytes += buf.length;
    this.#pos += buf.length;
    if (this.#batchBytes >= BATCH_BYTES || this.#batch.length >= BATCH_BUFFERS) {
      await this.#flushBatch();
    }
  }

  async #flushBatch(): Promise<void> {
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    await this.#writes.write(batch, this.#base + this.#batchStart);
  }

  #headerFields(gdOffset: number | null): HeaderFields {
    return {
      version: 3,
      flags: FLAG_VALID_NEWLINE | FLAG_COMPRESSED | FLAG_MARKERS,
      capacity: this.capacity,
      grainSize: WRITE_GRAIN_SECTORS,
      descriptorOffset: 1,
      descriptorSize: WRITE_DESCRIPTOR_SECTORS,
      numGTEsPerGT: WRITE_GTES_PER_GT,
      rgdOffset: 0,
      gdOffset,
      overHead: WRITE_OVERHEAD_SECTORS,
      compressAlgorithm: COMPRESSION_DEFLATE,
    };
  }

  /**
   * Places the remaining grains, writes the last grain table, the grain
   * directory, the footer and the end-of-stream marker, then the header and
   * descriptor. Returns the bytes of the stream (from the base offset).
   */
  async finish(): Promise<number> {
    if (this.#finished) {
      throw new FerryError('FERRY_INTERNAL', 'Cannot finish vmdk image: already finished');
    }
    this.#finished = true;
    await this.#flushPartial();
    while (this.#queue.length > 0) await this.#placeNext();
    await this.#flushGrainTable();
    await this.#append(marker(this.#gd.length / SECTOR, MARKER_GD));
    const gdOffset = this.#sector(this.#pos);
    await this.#append(this.#gd);
    await this.#append(marker(1, MARKER_FOOTER));
    await this.#append(encodeSparseHeader(this.#headerFields(gdOffset)));
    await this.#append(Buffer.alloc(SECTOR)); // end-of-stream marker
    await this.#flushBatch();

    const head = Buffer.alloc(WRITE_OVERHEAD_SECTORS * SECTOR);
    encodeSparseHeader(this.#headerFields(null)).copy(head, 0);
    // Some software reads CID ffffffff/fffffffe as "no parent" or "all zeros".
    let cid = randomBytes(4).readUInt32LE(0);
    while (cid >= 0xfffffffe) cid = randomBytes(4).readUInt32LE(0);
    const descriptor = buildStreamDescriptor({
      cid,
      capacity: this.capacity,
      extentName: this.#extentName,
      adapterType: this.#adapterType,
      hwVersion: '4',
    });
    head.write(descriptor, SECTOR, WRITE_DESCRIPTOR_SECTORS * SECTOR, 'latin1');
    await this.#out.write(head, this.#base);
    await this.#writes.drain();
    return this.#pos;
  }

  /** Lets compression and writes under way settle (the owner of `out` discards it). */
  async abort(): Promise<void> {
    this.#finished = true;
    await Promise.allSettled(this.#queue.splice(0, this.#queue.length).map((q) => q.packed));
    await this.#writes.settle();
  }
}
