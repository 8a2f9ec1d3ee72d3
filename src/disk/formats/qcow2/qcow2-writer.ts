import { promisify } from 'node:util';
import { deflateRaw } from 'node:zlib';
import { FerryError } from '../../../errors/index.js';
import { throwIfAborted } from '../../file-source.js';
import { LIMITS } from '../../limits.js';
import { OutputFile } from '../../output-file.js';
import type { DiskWriter, FormatWriter, WriteResult, WriterOptions } from '../../types.js';
import { WriteQueue } from '../../write-queue.js';
import { isZero } from '../../zero.js';
import { COMPRESSED_SECTOR, QCOW2_MAGIC, V3_WRITTEN_HEADER_LENGTH } from './constants.js';
import { HostAllocator } from './host-allocator.js';

const deflateRawAsync = promisify(deflateRaw);

/** Cluster size ferry writes: 64 KiB, qemu's default. */
const DEFAULT_CLUSTER_BITS = 16;
const TWO32 = 2 ** 32;
/** L1/L2 bit 63: the table or cluster has refcount exactly one. */
const COPIED_HI = 0x80000000;
const COMPRESSED_HI = 0x40000000;
/** 2 MiB write chunks whose compression may run ahead of placement. */
const COMPRESS_AHEAD = 3;
/** qemu's deflate settings: raw deflate with a 4 KiB window (qemu inflates with -12). */
const DEFLATE_OPTIONS = { windowBits: 12, memLevel: 9 } as const;

interface CompressedCluster {
  readonly guest: number;
  readonly raw: Buffer;
  readonly packed: Promise<Buffer>;
}

/** Gathers writes that follow each other on the host into one writev. */
class WriteBatch {
  readonly #out: OutputFile;
  #start = -1;
  #end = -1;
  #bufs: Buffer[] = [];
  readonly #runs: { start: number; bufs: Buffer[] }[] = [];
  /** Bytes added so far. */
  bytes = 0;

  constructor(out: OutputFile) {
    this.#out = out;
  }

  add(host: number, data: Buffer): void {
    this.bytes += data.length;
    if (this.#bufs.length > 0 && host >= this.#end && host - this.#end < COMPRESSED_SECTOR) {
      if (host > this.#end) this.#bufs.push(Buffer.alloc(host - this.#end));
      this.#bufs.push(data);
      this.#end = host + data.length;
      return;
    }
    this.#close();
    this.#start = host;
    this.#end = host + data.length;
    this.#bufs = [data];
  }

  #close(): void {
    if (this.#bufs.length > 0) this.#runs.push({ start: this.#start, bufs: this.#bufs });
    this.#bufs = [];
  }

  async flush(): Promise<void> {
    this.#close();
    for (const r of this.#runs.splice(0, this.#runs.length)) {
      await this.#out.writev(r.bufs, r.start);
    }
  }
}

/**
 * Writes a qcow2 v3 image (compat 1.1, 64 KiB clusters, 16-bit refcounts)
 * front to back: data clusters are appended in guest order, each L2 table is
 * reserved ahead of its first data cluster and written once the converter
 * moves past its range, refcount blocks are placed as host space reaches
 * them, and the L1 table, refcount table and header are written by `finish`.
 * Memory: one L2 table, one refcount block, the L1 table (1 MiB at 64 TiB)
 * and, when compressing, a few chunks in flight.
 */
class Qcow2Writer implements DiskWriter {
  readonly format = 'qcow2' as const;
  readonly #out: OutputFile;
  readonly #size: number;
  readonly #compress: boolean;
  readonly #clusterBits: number;
  readonly #cs: number;
  readonly #l2Entries: number;
  readonly #alloc: HostAllocator;
  readonly #l1: Buffer;
  #l2: Buffer | undefined;
  #l2Index = -1;
  #l2Host = 0;
  #next = 0;
  /** Placement of compressed chunks, in order; each entry settles when its chunk is on disk. */
  #tail: Promise<void> = Promise.resolve();
  readonly #ahead: Promise<void>[] = [];
  /** Host writes under way (their ranges never overlap), with background writeback. */
  readonly #queue: WriteQueue;

  constructor(out: OutputFile, size: number, compress: boolean, clusterBits: number) {
    this.#out = out;
    this.#queue = new WriteQueue(out);
    this.#size = size;
    this.#compress = compress;
    this.#clusterBits = clusterBits;
    this.#cs = 2 ** clusterBits;
    this.#l2Entries = this.#cs / 8;
    this.#alloc = new HostAllocator(this.#cs);
    this.#l1 = Buffer.alloc(Math.ceil(size / (this.#cs * this.#l2Entries)) * 8);
  }

  async write(offset: number, data: Buffer, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    if (offset < this.#next || offset % this.#cs !== 0 || offset + data.length > this.#size) {
      throw new FerryError('FERRY_INTERNAL', 'Cannot write qcow2 image: write out of order', {
        details: { offset, length: data.length, next: this.#next },
      });
    }
    this.#next = offset + data.length;
    if (this.#compress) await this.#writeCompressed(offset, data);
    else await this.#writePlain(offset, data);
  }

  /** Splits a chunk into clusters, leaving out all-zero ones; the last one is zero-padded. */
  *#clusters(offset: number, data: Buffer): Generator<{ guest: number; raw: Buffer }> {
    for (let o = 0; o < data.length; o += this.#cs) {
      let raw = data.subarray(o, o + this.#cs);
      if (isZero(raw)) continue;
      if (raw.length < this.#cs) {
        const padded = Buffer.alloc(this.#cs);
        raw.copy(padded);
        raw = padded;
      }
      yield { guest: (offset + o) / this.#cs, raw };
    }
  }

  async #writePlain(offset: number, data: Buffer): Promise<void> {
    const batch = new WriteBatch(this.#out);
    for (const { guest, raw } of this.#clusters(offset, data)) {
      await this.#selectL2(guest);
      const host = this.#alloc.clusters(1);
      this.#setL2(guest, COPIED_HI + Math.floor(host / TWO32), host % TWO32);
      batch.add(host, raw);
    }
    await this.#submit(() => batch.flush(), batch.bytes);
    await this.#writeBlocks();
  }

  /** Lets a host write run in the background, waiting while too many are under way. */
  #submit(start: () => Promise<void>, bytes: number): Promise<void> {
    return this.#queue.run(start, bytes);
  }

  async #writeCompressed(offset: number, data: Buffer): Promise<void> {
    const items: CompressedCluster[] = [];
    for (const { guest, raw } of this.#clusters(offset, data)) {
      const packed = deflateRawAsync(raw, DEFLATE_OPTIONS);
      packed.catch(() => {});
      items.push({ guest, raw, packed });
    }
    this.#tail = this.#tail.then(() => this.#place(items));
    const done = this.#tail;
    done.catch(() => {});
    this.#ahead.push(done);
    while (this.#ahead.length > COMPRESS_AHEAD) await this.#ahead.shift();
  }

  /** Stores compressed clusters in order, packed at sector granularity as qemu does. */
  async #place(items: readonly CompressedCluster[]): Promise<void> {
    const batch = new WriteBatch(this.#out);
    for (const it of items) {
      const packed = await it.packed;
      await this.#selectL2(it.guest);
      if (packed.length < this.#cs) {
        const host = this.#alloc.bytes(packed.length);
        const sectors =
          Math.floor((host + packed.length - 1) / COMPRESSED_SECTOR) -
          Math.floor(host / COMPRESSED_SECTOR);
        // The sector count sits at bit 62 - (cluster_bits - 8) of the descriptor.
        const shift = 62 - (this.#clusterBits - 8) - 32;
        const hi = COMPRESSED_HI + sectors * 2 ** shift + Math.floor(host / TWO32);
        this.#setL2(it.guest, hi, host % TWO32);
        batch.add(host, packed);
      } else {
        // Deflate did not help: store the cluster as is, like qemu.
        const host = this.#alloc.clusters(1);
        this.#setL2(it.guest, COPIED_HI + Math.floor(host / TWO32), host % TWO32);
        batch.add(host, it.raw);
      }
    }
    await this.#submit(() => batch.flush(), batch.bytes);
    await this.#writeBlocks();
  }

  /** Makes the L2 table covering guest cluster `guest` current, writing out the previous one. */
  async #selectL2(guest: number): Promise<void> {
    const index = Math.floor(guest / this.#l2Entries);
    if (index === this.#l2Index) return;
    await this.#flushL2();
    this.#l2 = Buffer.alloc(this.#cs);
    this.#l2Index = index;
    this.#l2Host = this.#alloc.clusters(1);
  }

  async #flushL2(): Promise<void> {
    if (this.#l2 === undefined) return;
    const l2 = this.#l2;
    const at = this.#l2Host;
    await this.#submit(() => this.#out.write(l2, at), l2.length);
    this.#l1.writeUInt32BE(COPIED_HI + Math.floor(this.#l2Host / TWO32), this.#l2Index * 8);
    this.#l1.writeUInt32BE(this.#l2Host % TWO32, this.#l2Index * 8 + 4);
    this.#l2 = undefined;
  }

  #setL2(guest: number, hi: number, lo: number): void {
    const at = (guest % this.#l2Entries) * 8;
    this.#l2!.writeUInt32BE(hi, at);
    this.#l2!.writeUInt32BE(lo, at + 4);
  }

  async #writeBlocks(): Promise<void> {
    for (const b of this.#alloc.takeBlocks()) {
      await this.#submit(() => this.#out.write(b.data, b.offset), b.data.length);
    }
  }

  released(): Promise<void> {
    // Compressed clusters are held until placed (#tail), then until written.
    const written = (): Promise<void> => this.#queue.barrier();
    return this.#tail.then(written, written);
  }

  async finish(signal?: AbortSignal): Promise<WriteResult> {
    throwIfAborted(signal);
    await Promise.all(this.#ahead.splice(0, this.#ahead.length));
    await this.#tail;
    await this.#flushL2();
    await this.#queue.drain();
    const alloc = this.#alloc;
    const l1Clusters = Math.ceil(this.#l1.length / this.#cs);
    const l1Offset = l1Clusters > 0 ? alloc.clusters(l1Clusters) : 0;
    // The refcount table must list every block, including any its own clusters bring.
    const perBlock = this.#cs / 2;
    let tableClusters = 1;
    while (
      Math.ceil((Math.ceil(alloc.end / this.#cs) + tableClusters + 1) / perBlock) >
      (tableClusters * this.#cs) / 8
    ) {
      tableClusters++;
    }
    const tableOffset = alloc.clusters(tableClusters);
    const blocks = alloc.finishBlocks();
    const offsets = alloc.blockOffsets;
    if (offsets.length * 8 > tableClusters * this.#cs) {
      throw new FerryError('FERRY_INTERNAL', 'Cannot write qcow2 image: refcount table overflow');
    }
    const table = Buffer.alloc(tableClusters * this.#cs);
    offsets.forEach((off, i) => {
      table.writeUInt32BE(Math.floor(off / TWO32), i * 8);
      table.writeUInt32BE(off % TWO32, i * 8 + 4);
    });
    for (const b of blocks) await this.#out.write(b.data, b.offset);
    await this.#out.write(table, tableOffset);
    if (l1Clusters > 0) {
      const l1 = Buffer.alloc(l1Clusters * this.#cs);
      this.#l1.copy(l1);
      await this.#out.write(l1, l1Offset);
    }
    await this.#out.write(this.#header(l1Offset, tableOffset, tableClusters), 0);
    await this.#out.truncate(alloc.end);
    throwIfAborted(signal);
    await this.#out.commit();
    return { fileSize: alloc.end, virtualSize: this.#size };
  }

  #header(l1Offset: number, tableOffset: number, tableClusters: number): Buffer {
    const h = Buffer.alloc(V3_WRITTEN_HEADER_LENGTH + 8);
    h.writeUInt32BE(QCOW2_MAGIC, 0);
    h.writeUInt32BE(3, 4);
    // 8: backing_file_offset, 16: backing_file_size stay 0.
    h.writeUInt32BE(this.#clusterBits, 20);
    h.writeBigUInt64BE(BigInt(this.#size), 24);
    // 32: crypt_method 0.
    h.writeUInt32BE(this.#l1.length / 8, 36);
    h.writeBigUInt64BE(BigInt(l1Offset), 40);
    h.writeBigUInt64BE(BigInt(tableOffset), 48);
    h.writeUInt32BE(tableClusters, 56);
    // 60: nb_snapshots, 64: snapshots_offset, 72..95: feature bits all 0.
    h.writeUInt32BE(4, 96); // refcount_order: 16-bit refcounts
    h.writeUInt32BE(V3_WRITTEN_HEADER_LENGTH, 100);
    // 104: compression_type 0 (deflate), then padding; then the end-of-extensions marker.
    return h;
  }

  async abort(): Promise<void> {
    await Promise.allSettled([...this.#ahead, this.#tail]);
    await this.#queue.settle();
    await this.#out.discard();
  }
}

/**
 * Creates a qcow2 writer. `clusterBits` other than 16 exists for tests (small
 * clusters exercise many L2 tables and refcount blocks with little data).
 */
export async function createQcow2Writer(
  path: string,
  options: WriterOptions,
  clusterBits = DEFAULT_CLUSTER_BITS,
): Promise<DiskWriter> {
  if (!Number.isSafeInteger(options.virtualSize) || options.virtualSize < 0) {
    throw new FerryError('FERRY_USAGE', 'Cannot write qcow2 image: invalid virtual size', {
      details: { virtualSize: options.virtualSize },
    });
  }
  // qemu counts qcow2 sizes in 512-byte sectors; round up as qemu-img create does.
  const size = Math.ceil(options.virtualSize / 512) * 512;
  if (size > LIMITS.maxVirtualSize) {
    throw new FerryError('FERRY_IMAGE_TOO_LARGE', 'Cannot write qcow2 image: over 64 TiB', {
      details: { virtualSize: options.virtualSize },
    });
  }
  if (!Number.isInteger(clusterBits) || clusterBits < 9 || clusterBits > 21) {
    throw new FerryError('FERRY_USAGE', 'Cannot write qcow2 image: invalid cluster size', {
      details: { clusterBits },
    });
  }
  const out = await OutputFile.create(path, options);
  return new Qcow2Writer(out, size, options.compress ?? false, clusterBits);
}

export const qcow2Writer: FormatWriter = {
  name: 'qcow2',
  create: (path, options) => createQcow2Writer(path, options),
};
