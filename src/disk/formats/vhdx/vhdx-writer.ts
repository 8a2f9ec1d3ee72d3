import { randomBytes } from 'node:crypto';
import { FerryError } from '../../../errors/index.js';
import { alignUp, isPowerOfTwo } from '../../binary.js';
import { throwIfAborted } from '../../file-source.js';
import { LIMITS } from '../../limits.js';
import { OutputFile } from '../../output-file.js';
import type { DiskWriter, FormatWriter, WriteResult, WriterOptions } from '../../types.js';
import { WriteQueue } from '../../write-queue.js';
import { dataRuns } from '../../zero.js';
import {
  BAT_REGION_GUID,
  batEntryCount,
  batIndex,
  chunkRatio,
  HEADER_OFFSETS,
  MAX_BLOCK_SIZE,
  METADATA_REGION_GUID,
  MIN_BLOCK_SIZE,
  MiB,
  PAYLOAD_FULLY_PRESENT,
  REGION_TABLE_OFFSETS,
} from './constants.js';
import {
  encodeFileIdentifier,
  encodeHeader,
  encodeMetadata,
  encodeRegionTable,
} from './structures.js';

/**
 * Default payload block size: 2 MiB, the converter's write unit, so every
 * stored block is one source window and all-zero windows cost nothing. It
 * doubles for huge disks so the BAT stays at most ~1 Mi entries (8 MiB).
 */
export const DEFAULT_BLOCK_SIZE = 2 * MiB;
const MAX_DEFAULT_BLOCKS = 1024 * 1024;
const LOGICAL_SECTOR = 512;
const PHYSICAL_SECTOR = 4096;
const LOG_OFFSET = MiB;
const LOG_LENGTH = MiB;
const BAT_OFFSET = 2 * MiB;
const METADATA_LENGTH = MiB;
/** BAT entries serialised per write at finish. */
const BAT_WRITE_ENTRIES = 128 * 1024;

/** The block size ferry picks for a disk of `virtualSize` bytes. */
export function defaultBlockSize(virtualSize: number): number {
  let bs = DEFAULT_BLOCK_SIZE;
  while (bs < MAX_BLOCK_SIZE && Math.ceil(virtualSize / bs) > MAX_DEFAULT_BLOCKS) bs *= 2;
  return bs;
}

/**
 * Writes a dynamic VHDX: header section, 1 MiB (empty) log, BAT, metadata,
 * then payload blocks appended in the order their first non-zero byte
 * arrives. Blocks never written stay NOT_PRESENT; the BAT, headers and
 * region tables are written by `finish`.
 */
class VhdxWriter implements DiskWriter {
  readonly format = 'vhdx' as const;
  readonly #out: OutputFile;
  readonly #virtualSize: number;
  readonly #blockSize: number;
  readonly #ratio: number;
  /** File offset of each payload block in MiB; 0 = not present. */
  readonly #blockMiB: Uint32Array;
  readonly #batLength: number;
  readonly #metadataOffset: number;
  #next: number;
  #written = 0;
  readonly #queue: WriteQueue;

  constructor(out: OutputFile, virtualSize: number, blockSize: number) {
    this.#out = out;
    this.#queue = new WriteQueue(out);
    this.#virtualSize = virtualSize;
    this.#blockSize = blockSize;
    this.#ratio = chunkRatio(LOGICAL_SECTOR, blockSize);
    const blocks = Math.ceil(virtualSize / blockSize);
    this.#blockMiB = new Uint32Array(blocks);
    this.#batLength = Math.max(MiB, alignUp(batEntryCount(blocks, this.#ratio) * 8, MiB));
    this.#metadataOffset = BAT_OFFSET + this.#batLength;
    this.#next = this.#metadataOffset + METADATA_LENGTH;
  }

  async write(offset: number, data: Buffer, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    this.#queue.throwFailure();
    if (offset < this.#written || offset + data.length > this.#virtualSize) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `Cannot write VHDX data at ${offset}+${data.length}: writes must increase and stay inside the disk`,
        { details: { offset, length: data.length, written: this.#written } },
      );
    }
    const bs = this.#blockSize;
    let pos = 0;
    while (pos < data.length) {
      const abs = offset + pos;
      const block = Math.floor(abs / bs);
      const inBlock = abs - block * bs;
      const n = Math.min(data.length - pos, bs - inBlock);
      for (const [from, to] of dataRuns(data.subarray(pos, pos + n))) {
        if (this.#blockMiB[block] === 0) {
          this.#blockMiB[block] = this.#next / MiB;
          this.#next += bs;
        }
        const at = this.#blockMiB[block]! * MiB + inBlock + from;
        await this.#queue.write(data.subarray(pos + from, pos + to), at);
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
    const guids = () => randomBytes(16);
    await out.write(encodeFileIdentifier('ferry'), 0);
    const header = {
      fileWriteGuid: guids(),
      dataWriteGuid: guids(),
      logGuid: Buffer.alloc(16),
      logVersion: 0,
      version: 1,
      logLength: LOG_LENGTH,
      logOffset: LOG_OFFSET,
    };
    await out.write(encodeHeader({ ...header, sequence: 1n }), HEADER_OFFSETS[0]);
    await out.write(encodeHeader({ ...header, sequence: 2n }), HEADER_OFFSETS[1]);
    const table = encodeRegionTable([
      { guid: BAT_REGION_GUID, offset: BAT_OFFSET, length: this.#batLength, required: true },
      {
        guid: METADATA_REGION_GUID,
        offset: this.#metadataOffset,
        length: METADATA_LENGTH,
        required: true,
      },
    ]);
    for (const at of REGION_TABLE_OFFSETS) await out.write(table, at);
    await out.write(
      encodeMetadata({
        blockSize: this.#blockSize,
        leaveBlocksAllocated: false,
        hasParent: false,
        virtualSize: this.#virtualSize,
        logicalSectorSize: LOGICAL_SECTOR,
        physicalSectorSize: PHYSICAL_SECTOR,
        page83: guids(),
      }),
      this.#metadataOffset,
    );
    await this.#writeBat(signal);
    await out.truncate(this.#next);
    await out.commit();
    return { fileSize: this.#next, virtualSize: this.#virtualSize };
  }

  async #writeBat(signal?: AbortSignal): Promise<void> {
    const blocks = this.#blockMiB.length;
    const entries = batEntryCount(blocks, this.#ratio);
    for (let first = 0; first < entries; first += BAT_WRITE_ENTRIES) {
      throwIfAborted(signal);
      const count = Math.min(BAT_WRITE_ENTRIES, entries - first);
      const buf = Buffer.alloc(count * 8);
      // Payload blocks whose entries fall in [first, first + count).
      const per = this.#ratio + 1;
      const b0 = Math.floor(first / per) * this.#ratio;
      for (let b = b0; b < blocks; b++) {
        const e = batIndex(b, this.#ratio);
        if (e >= first + count) break;
        if (e < first) continue;
        const mb = this.#blockMiB[b]!;
        if (mb === 0) continue;
        const j = (e - first) * 8;
        buf.writeUInt32LE((((mb % 4096) << 20) | PAYLOAD_FULLY_PRESENT) >>> 0, j);
        buf.writeUInt32LE(Math.floor(mb / 4096), j + 4);
      }
      await this.#out.write(buf, BAT_OFFSET + first * 8);
    }
  }

  async abort(): Promise<void> {
    await this.#queue.settle();
    await this.#out.discard();
  }
}

/** Creates a VHDX writer; `blockSize` overrides the default (tests, tuning). */
export async function createVhdxWriter(
  path: string,
  options: WriterOptions,
  blockSize?: number,
): Promise<DiskWriter> {
  const virtualSize = alignUp(options.virtualSize, LOGICAL_SECTOR);
  if (
    !Number.isSafeInteger(virtualSize) ||
    virtualSize < 0 ||
    virtualSize > LIMITS.maxVirtualSize
  ) {
    throw new FerryError(
      'FERRY_IMAGE_TOO_LARGE',
      `Cannot write VHDX: the virtual size ${options.virtualSize} exceeds the format's 64 TiB`,
      { details: { virtualSize: options.virtualSize } },
    );
  }
  const bs = blockSize ?? defaultBlockSize(virtualSize);
  if (!isPowerOfTwo(bs) || bs < MIN_BLOCK_SIZE || bs > MAX_BLOCK_SIZE) {
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot write VHDX: block size ${bs} is not a power of two from 1 MiB to 256 MiB`,
      { details: { blockSize: bs } },
    );
  }
  const out = await OutputFile.create(path, options);
  return new VhdxWriter(out, virtualSize, bs);
}

export const vhdxWriter: FormatWriter = {
  name: 'vhdx',
  create: (path, options) => createVhdxWriter(path, options),
};
