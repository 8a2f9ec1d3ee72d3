import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { throwIfAborted } from '../../file-source.js';
import { LIMITS } from '../../limits.js';
import { BLOCK_DISCARDED, BLOCK_UNALLOCATED } from './constants.js';
import type { VdiHeader } from './header.js';

/** What a virtual block holds. */
export const BlockKind = { Hole: 0, Zero: 1, Data: 2 } as const;
export type BlockKind = (typeof BlockKind)[keyof typeof BlockKind];

/** Called for each virtual block in order; `fileOffset` is meaningful for Data only. */
export type BlockVisitor = (block: number, kind: BlockKind, fileOffset: number) => void;

/** Map entries per cached page (64 KiB of map, 16 GiB of disk). */
const PAGE_ENTRIES = 16384;
const PAGE_BYTES = PAGE_ENTRIES * 4;

function badMap(source: ByteSource, reason: string, details: Record<string, number>): FerryError {
  return new FerryError('FERRY_VDI_BAD_BLOCK_MAP', `Cannot read ${source.name}: ${reason}`, {
    details,
  });
}

/**
 * The VDI block map (one u32 per 1 MiB block), read in 64 KiB pages kept in a
 * cache bounded by LIMITS.maxTableCacheBytes. `open` walks it once, refusing
 * entries that point past blocks_allocated or past the end of the file, and
 * data blocks used by two virtual blocks.
 */
export class BlockMap {
  readonly blockSize: number;
  /** Virtual blocks covering the disk (entries past these exist but are unused). */
  readonly diskBlocks: number;
  readonly #source: ByteSource;
  readonly #header: VdiHeader;
  readonly #cache = new Map<number, Promise<Buffer>>();

  private constructor(source: ByteSource, header: VdiHeader) {
    this.#source = source;
    this.#header = header;
    this.blockSize = header.blockSize;
    this.diskBlocks = Math.ceil(header.virtualSize / header.blockSize);
  }

  static async open(
    source: ByteSource,
    header: VdiHeader,
    signal?: AbortSignal,
  ): Promise<BlockMap> {
    const map = new BlockMap(source, header);
    await map.#checkAll(signal);
    return map;
  }

  /** Length of virtual block `block` inside the disk. */
  blockLength(block: number): number {
    return Math.max(0, Math.min(this.blockSize, this.#header.virtualSize - block * this.blockSize));
  }

  /** Visits virtual blocks [first, end) in order. */
  async visit(first: number, end: number, fn: BlockVisitor, signal?: AbortSignal): Promise<void> {
    let block = first;
    while (block < end) {
      throwIfAborted(signal);
      const pageNo = Math.floor(block / PAGE_ENTRIES);
      const page = await this.#page(pageNo, signal);
      const pageEnd = Math.min(end, pageNo * PAGE_ENTRIES + page.length / 4);
      for (; block < pageEnd; block++) {
        const entry = page.readUInt32LE((block - pageNo * PAGE_ENTRIES) * 4);
        if (entry === BLOCK_UNALLOCATED) fn(block, BlockKind.Hole, 0);
        else if (entry === BLOCK_DISCARDED) fn(block, BlockKind.Zero, 0);
        else fn(block, BlockKind.Data, this.#header.offsetData + entry * this.blockSize);
      }
    }
  }

  #page(pageNo: number, signal?: AbortSignal): Promise<Buffer> {
    const hit = this.#cache.get(pageNo);
    if (hit !== undefined) {
      this.#cache.delete(pageNo);
      this.#cache.set(pageNo, hit);
      return hit;
    }
    const first = pageNo * PAGE_ENTRIES;
    const count = Math.min(PAGE_ENTRIES, this.#header.blocksInImage - first);
    const p = this.#source.read(this.#header.offsetBmap + first * 4, count * 4, signal);
    p.catch(() => this.#cache.delete(pageNo));
    this.#cache.set(pageNo, p);
    while (this.#cache.size * PAGE_BYTES > LIMITS.maxTableCacheBytes) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
    return p;
  }

  /** Checks every entry of the map once (the map is at most LIMITS.maxBlockTableBytes). */
  async #checkAll(signal?: AbortSignal): Promise<void> {
    const { blocksInImage, blocksAllocated, offsetData } = this.#header;
    const used = new Uint8Array(Math.ceil(blocksAllocated / 8));
    const size = this.#source.size;
    for (let pageNo = 0; pageNo * PAGE_ENTRIES < blocksInImage; pageNo++) {
      throwIfAborted(signal);
      const page = await this.#page(pageNo, signal);
      const first = pageNo * PAGE_ENTRIES;
      for (let j = 0; j < page.length / 4; j++) {
        const entry = page.readUInt32LE(j * 4);
        if (entry >= BLOCK_DISCARDED) continue;
        const block = first + j;
        if (entry >= blocksAllocated) {
          throw badMap(
            this.#source,
            `block ${block} points at data block ${entry}, but only ${blocksAllocated} are allocated`,
            { block, entry, blocksAllocated },
          );
        }
        const bit = 1 << (entry & 7);
        if ((used[entry >> 3]! & bit) !== 0) {
          throw badMap(
            this.#source,
            `data block ${entry} is used by two blocks (one is ${block})`,
            {
              block,
              entry,
            },
          );
        }
        used[entry >> 3]! |= bit;
        const end = offsetData + entry * this.blockSize + this.blockLength(block);
        if (end > size) {
          throw new FerryError(
            'FERRY_IMAGE_TRUNCATED',
            `Cannot read ${this.#source.name}: block ${block} lies past the end of the file (${size} bytes)`,
            { details: { block, entry, end, size } },
          );
        }
      }
    }
  }
}
