import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { throwIfAborted } from '../../file-source.js';
import { LIMITS } from '../../limits.js';
import {
  batEntryCount,
  batIndex,
  chunkRatio,
  HEADER_SECTION_SIZE,
  MiB,
  PAYLOAD_FULLY_PRESENT,
  PAYLOAD_NOT_PRESENT,
  PAYLOAD_PARTIALLY_PRESENT,
  PAYLOAD_UNDEFINED,
  PAYLOAD_UNMAPPED,
  PAYLOAD_UNMAPPED_V095,
  PAYLOAD_ZERO,
} from './constants.js';
import type { FileRegion } from './region-table.js';

/** What a payload block holds. */
export const BlockKind = { Hole: 0, Zero: 1, Data: 2 } as const;
export type BlockKind = (typeof BlockKind)[keyof typeof BlockKind];

/** Called for each payload block in order; `fileOffset` is meaningful for Data only. */
export type BlockVisitor = (block: number, kind: BlockKind, fileOffset: number) => void;

/** BAT entries per cached page (64 KiB of table). */
const PAGE_ENTRIES = 8192;
const PAGE_BYTES = PAGE_ENTRIES * 8;
/** Largest file whose MiB-granular occupancy map ferry builds (16 MiB of bits). */
const MAX_OCCUPANCY_BYTES = 16 * MiB;

export interface BatLayout {
  readonly region: FileRegion;
  readonly blockSize: number;
  readonly logicalSectorSize: number;
  readonly virtualSize: number;
}

function badBat(source: ByteSource, reason: string, details: Record<string, string | number> = {}) {
  return new FerryError('FERRY_VHDX_BAD_BAT', `Cannot read ${source.name}: ${reason}`, { details });
}

/**
 * The block allocation table, read in 64 KiB pages kept in a cache bounded
 * by LIMITS.maxTableCacheBytes. `open` walks the whole table once, checking
 * every payload entry's state and that every present block lies inside the
 * file without overlapping the headers, log, regions or another block.
 */
export class BatTable {
  readonly blockSize: number;
  readonly payloadBlocks: number;
  readonly ratio: number;
  readonly entries: number;
  readonly #source: ByteSource;
  readonly #layout: BatLayout;
  readonly #cache = new Map<number, Promise<Buffer>>();

  private constructor(source: ByteSource, layout: BatLayout) {
    this.#source = source;
    this.#layout = layout;
    this.blockSize = layout.blockSize;
    this.ratio = chunkRatio(layout.logicalSectorSize, layout.blockSize);
    this.payloadBlocks = Math.ceil(layout.virtualSize / layout.blockSize);
    this.entries = batEntryCount(this.payloadBlocks, this.ratio);
  }

  static async open(
    source: ByteSource,
    layout: BatLayout,
    occupied: readonly FileRegion[],
    signal?: AbortSignal,
  ): Promise<BatTable> {
    const bat = new BatTable(source, layout);
    const bytes = bat.entries * 8;
    if (bytes > LIMITS.maxBlockTableBytes) {
      throw new FerryError(
        'FERRY_IMAGE_LIMIT',
        `Cannot open ${source.name}: its BAT needs ${bytes} bytes, more than the ${LIMITS.maxBlockTableBytes}-byte cap`,
        { details: { entries: bat.entries, cap: LIMITS.maxBlockTableBytes } },
      );
    }
    if (bytes > layout.region.length) {
      throw badBat(
        source,
        `the BAT region (${layout.region.length} bytes) is too small for ${bat.entries} entries`,
        { entries: bat.entries, regionLength: layout.region.length },
      );
    }
    await bat.#checkAll(occupied, signal);
    return bat;
  }

  /** Length of payload block `block` inside the virtual disk. */
  blockLength(block: number): number {
    return Math.min(this.blockSize, this.#layout.virtualSize - block * this.blockSize);
  }

  /** Visits payload blocks [first, end) in order. */
  async visit(first: number, end: number, fn: BlockVisitor, signal?: AbortSignal): Promise<void> {
    let block = first;
    while (block < end) {
      throwIfAborted(signal);
      const entry = batIndex(block, this.ratio);
      const pageNo = Math.floor(entry / PAGE_ENTRIES);
      const page = await this.#page(pageNo, signal);
      const pageEnd = pageNo * PAGE_ENTRIES + page.length / 8;
      for (let e = batIndex(block, this.ratio); block < end && e < pageEnd; ) {
        const j = (e - pageNo * PAGE_ENTRIES) * 8;
        const lo = page.readUInt32LE(j);
        const state = lo & 7;
        if (state === PAYLOAD_FULLY_PRESENT) {
          fn(block, BlockKind.Data, (page.readUInt32LE(j + 4) * 4096 + (lo >>> 20)) * MiB);
        } else {
          fn(block, state === PAYLOAD_ZERO ? BlockKind.Zero : BlockKind.Hole, 0);
        }
        block++;
        e = batIndex(block, this.ratio);
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
    const count = Math.min(PAGE_ENTRIES, this.entries - first);
    const p = this.#source
      .read(this.#layout.region.offset + first * 8, count * 8, signal)
      .then((buf) => {
        this.#checkPage(first, buf);
        return buf;
      });
    p.catch(() => {
      if (this.#cache.get(pageNo) === p) this.#cache.delete(pageNo);
    });
    this.#cache.set(pageNo, p);
    while (this.#cache.size * PAGE_BYTES > LIMITS.maxTableCacheBytes) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
    return p;
  }

  /** Checks the state and range of every payload entry of a page starting at entry `first`. */
  #checkPage(first: number, page: Buffer): void {
    const per = this.ratio + 1;
    const fileMiB = Math.floor(this.#source.size / MiB);
    for (let j = 0; j < page.length / 8; j++) {
      const e = first + j;
      const pos = e % per;
      if (pos === this.ratio) continue; // sector bitmap entry: unused without a parent
      const block = Math.floor(e / per) * this.ratio + pos;
      const lo = page.readUInt32LE(j * 8);
      const state = lo & 7;
      switch (state) {
        case PAYLOAD_NOT_PRESENT:
        case PAYLOAD_UNDEFINED:
        case PAYLOAD_ZERO:
        case PAYLOAD_UNMAPPED:
        case PAYLOAD_UNMAPPED_V095:
          continue;
        case PAYLOAD_FULLY_PRESENT:
          break;
        case PAYLOAD_PARTIALLY_PRESENT:
          throw badBat(
            this.#source,
            `BAT entry ${e} (block ${block}) is PARTIALLY_PRESENT, which only a differencing disk may use`,
            { entry: e, block },
          );
        default:
          throw badBat(
            this.#source,
            `BAT entry ${e} (block ${block}) has the invalid state ${state}`,
            {
              entry: e,
              block,
              state,
            },
          );
      }
      const mb = page.readUInt32LE(j * 8 + 4) * 4096 + (lo >>> 20);
      const length = this.blockLength(block);
      if (mb > fileMiB || mb * MiB + length > this.#source.size) {
        throw badBat(
          this.#source,
          `block ${block} lies at ${mb} MiB, past the end of the file (${this.#source.size} bytes)`,
          { block, offsetMiB: mb, size: this.#source.size },
        );
      }
      if (mb * MiB < HEADER_SECTION_SIZE) {
        throw badBat(this.#source, `block ${block} lies inside the header section`, { block });
      }
    }
  }

  /** Loads every page once (checking it) and refuses blocks that overlap anything. */
  async #checkAll(occupied: readonly FileRegion[], signal?: AbortSignal): Promise<void> {
    const units = Math.ceil(this.#source.size / MiB);
    if (units / 8 > MAX_OCCUPANCY_BYTES) {
      throw new FerryError(
        'FERRY_IMAGE_TOO_LARGE',
        `Cannot open ${this.#source.name}: the file (${this.#source.size} bytes) is larger than any VHDX ferry accepts`,
        { details: { size: this.#source.size } },
      );
    }
    const used = new Uint8Array(Math.ceil(units / 8));
    const mark = (offset: number, length: number, what: string): void => {
      const end = Math.min(units, Math.ceil((offset + length) / MiB));
      for (let u = Math.floor(offset / MiB); u < end; u++) {
        const bit = 1 << (u & 7);
        if ((used[u >> 3]! & bit) !== 0) {
          throw badBat(this.#source, `${what} overlaps other data or metadata at ${u} MiB`, {
            offsetMiB: u,
          });
        }
        used[u >> 3]! |= bit;
      }
    };
    mark(0, HEADER_SECTION_SIZE, 'the header section');
    for (const r of occupied) mark(r.offset, r.length, `the ${r.name} region`);
    await this.visit(
      0,
      this.payloadBlocks,
      (block, kind, fileOffset) => {
        if (kind === BlockKind.Data) mark(fileOffset, this.blockLength(block), `block ${block}`);
      },
      signal,
    );
  }
}
