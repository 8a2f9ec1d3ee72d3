import { FerryError } from '../../../errors/index.js';
import { alignUp } from '../../binary.js';
import { throwIfAborted } from '../../file-source.js';
import { OutputFile } from '../../output-file.js';
import type { DiskWriter, FormatWriter, WriteResult, WriterOptions } from '../../types.js';
import { WriteQueue } from '../../write-queue.js';
import { dataRuns } from '../../zero.js';
import {
  BAT_UNUSED,
  bitmapSize,
  DISK_DYNAMIC,
  DISK_FIXED,
  FOOTER_SIZE,
  HEADER_SIZE,
  MAX_VIRTUAL_SIZE,
  MiB,
  SECTOR,
} from './constants.js';
import { encodeDynamicHeader } from './dynamic-header.js';
import { encodeFooter } from './footer.js';

/** Dynamic block size: 2 MiB, the spec's default and the converter's write unit. */
export const BLOCK_SIZE = 2 * MiB;
/** Fixed VHDs are rounded up to whole MiB, as Azure requires. */
export const FIXED_ALIGN = MiB;
/** Host page size the data of every stored block is aligned to. */
const DATA_ALIGN = 4096;
/** The sector bitmap of a 2 MiB block. */
const BITMAP_BYTES = bitmapSize(BLOCK_SIZE);
const HEADER_OFFSET = FOOTER_SIZE;
const BAT_OFFSET = FOOTER_SIZE + HEADER_SIZE;

function checkOrder(offset: number, length: number, written: number, size: number): void {
  if (offset < written || offset + length > size) {
    throw new FerryError(
      'FERRY_INTERNAL',
      `Cannot write VHD data at ${offset}+${length}: writes must increase and stay inside the disk`,
      { details: { offset, length, written } },
    );
  }
}

/** A fixed VHD: the disk's bytes (sparse where zero), then the footer. */
class FixedVhdWriter implements DiskWriter {
  readonly format = 'vhd' as const;
  readonly #out: OutputFile;
  readonly #queue: WriteQueue;
  readonly #size: number;
  #written = 0;

  constructor(out: OutputFile, size: number, syncEvery: number | undefined) {
    this.#out = out;
    this.#queue = new WriteQueue(out, { syncEvery });
    this.#size = size;
  }

  async write(offset: number, data: Buffer, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    this.#queue.throwFailure();
    checkOrder(offset, data.length, this.#written, this.#size);
    for (const [from, to] of dataRuns(data)) {
      await this.#queue.write(data.subarray(from, to), offset + from);
    }
    this.#written = offset + data.length;
  }

  released(): Promise<void> {
    return this.#queue.barrier();
  }

  async finish(signal?: AbortSignal): Promise<WriteResult> {
    throwIfAborted(signal);
    await this.#queue.drain();
    await this.#out.truncate(this.#size);
    await this.#out.write(
      encodeFooter({ diskType: DISK_FIXED, currentSize: this.#size }),
      this.#size,
    );
    await this.#out.commit();
    return { fileSize: this.#size + FOOTER_SIZE, virtualSize: this.#size };
  }

  async abort(): Promise<void> {
    await this.#queue.settle();
    await this.#out.discard();
  }
}

/**
 * A dynamic VHD: footer copy, dynamic header, BAT, then 2 MiB blocks in the
 * order their first non-zero byte arrives, each a sector bitmap (all ones)
 * followed by its data, and the footer. Every block's data starts on a 4 KiB
 * boundary (the bitmap sits in the last sector before it), so zero runs
 * inside a block stay holes in the file. All-zero blocks are not stored. The
 * BAT (4 bytes per block) is kept in memory and written by `finish`.
 */
class DynamicVhdWriter implements DiskWriter {
  readonly format = 'vhd' as const;
  readonly #out: OutputFile;
  readonly #queue: WriteQueue;
  readonly #size: number;
  readonly #bat: Uint32Array;
  readonly #batBytes: number;
  /** A page whose last sector is a block's bitmap (all ones). */
  readonly #bitmapPage: Buffer;
  readonly #stride: number;
  /** Data offset of the next block to allocate. */
  #nextData: number;
  /** End of the last stored block (where the footer goes). */
  #end: number;
  #written = 0;

  constructor(out: OutputFile, size: number, syncEvery: number | undefined) {
    this.#out = out;
    this.#queue = new WriteQueue(out, { syncEvery });
    this.#size = size;
    const entries = Math.max(1, Math.ceil(size / BLOCK_SIZE));
    this.#bat = new Uint32Array(entries).fill(BAT_UNUSED);
    this.#batBytes = alignUp(entries * 4, SECTOR);
    // The bitmap ends the page before its block's data; the page is written
    // whole (zeros, then the bitmap), so that a block's writes are aligned
    // and go direct with its data (see OutputFile).
    this.#bitmapPage = Buffer.alloc(DATA_ALIGN);
    this.#bitmapPage.fill(0xff, DATA_ALIGN - BITMAP_BYTES);
    this.#stride = alignUp(BITMAP_BYTES + BLOCK_SIZE, DATA_ALIGN);
    this.#nextData = alignUp(BAT_OFFSET + this.#batBytes, DATA_ALIGN) + DATA_ALIGN;
    this.#end = BAT_OFFSET + this.#batBytes;
  }

  async write(offset: number, data: Buffer, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    this.#queue.throwFailure();
    checkOrder(offset, data.length, this.#written, this.#size);
    let pos = 0;
    while (pos < data.length) {
      const abs = offset + pos;
      const block = Math.floor(abs / BLOCK_SIZE);
      const inBlock = abs - block * BLOCK_SIZE;
      const n = Math.min(data.length - pos, BLOCK_SIZE - inBlock);
      const piece = data.subarray(pos, pos + n);
      for (const [from, to] of dataRuns(piece)) {
        let fresh = false;
        if (this.#bat[block] === BAT_UNUSED) {
          const at = this.#nextData;
          this.#bat[block] = (at - BITMAP_BYTES) / SECTOR;
          this.#nextData += this.#stride;
          this.#end = at + BLOCK_SIZE;
          fresh = true;
        }
        const dataAt = this.#bat[block]! * SECTOR + BITMAP_BYTES;
        const chunk = piece.subarray(from, to);
        const page = dataAt - DATA_ALIGN;
        if (fresh && inBlock + from === 0) {
          await this.#queue.write([this.#bitmapPage, chunk], page);
        } else {
          if (fresh) await this.#queue.write(this.#bitmapPage, page);
          await this.#queue.write(chunk, dataAt + inBlock + from);
        }
      }
      pos += n;
    }
    this.#written = offset + data.length;
  }

  released(): Promise<void> {
    return this.#queue.barrier();
  }

  async finish(signal?: AbortSignal): Promise<WriteResult> {
    throwIfAborted(signal);
    await this.#queue.drain();
    const out = this.#out;
    const footer = encodeFooter({
      diskType: DISK_DYNAMIC,
      currentSize: this.#size,
      dataOffset: HEADER_OFFSET,
    });
    const header = encodeDynamicHeader({
      tableOffset: BAT_OFFSET,
      maxTableEntries: this.#bat.length,
      blockSize: BLOCK_SIZE,
    });
    const bat = Buffer.alloc(this.#batBytes, 0xff);
    for (let i = 0; i < this.#bat.length; i++) bat.writeUInt32BE(this.#bat[i]!, i * 4);
    await out.writev([footer, header, bat], 0);
    await out.truncate(this.#end);
    await out.write(footer, this.#end);
    await out.commit();
    return { fileSize: this.#end + FOOTER_SIZE, virtualSize: this.#size };
  }

  async abort(): Promise<void> {
    await this.#queue.settle();
    await this.#out.discard();
  }
}

/**
 * The virtual size ferry writes for `requested` bytes: whole sectors, or
 * whole MiB (at least one: a footer-only file would look dynamic to qemu) when fixed.
 */
export function vhdVirtualSize(requested: number, subformat: 'fixed' | 'dynamic'): number {
  return subformat === 'fixed'
    ? alignUp(Math.max(1, requested), FIXED_ALIGN)
    : alignUp(requested, SECTOR);
}

/**
 * Creates a VHD writer; `syncEvery` overrides the write queue's choice
 * (SYNC_EVERY for buffered writes, none for direct ones; tests).
 */
export async function createVhdWriter(
  path: string,
  options: WriterOptions,
  syncEvery?: number,
): Promise<DiskWriter> {
  const subformat = options.vhdSubformat ?? 'dynamic';
  const size = vhdVirtualSize(options.virtualSize, subformat);
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_VIRTUAL_SIZE) {
    throw new FerryError(
      'FERRY_IMAGE_TOO_LARGE',
      `Cannot write VHD: the virtual size ${options.virtualSize} exceeds the format's 2040 GiB`,
      { details: { virtualSize: options.virtualSize, max: MAX_VIRTUAL_SIZE } },
    );
  }
  const out = await OutputFile.create(path, options);
  return subformat === 'fixed'
    ? new FixedVhdWriter(out, size, syncEvery)
    : new DynamicVhdWriter(out, size, syncEvery);
}

export const vhdWriter: FormatWriter = {
  name: 'vhd',
  create: (path, options) => createVhdWriter(path, options),
};
