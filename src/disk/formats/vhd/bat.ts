import type { ByteSource } from '../../byte-source.js';
import { throwIfAborted } from '../../file-source.js';
import { LIMITS } from '../../limits.js';
import { BAT_UNUSED, bitmapSize, FOOTER_SIZE, HEADER_SIZE, SECTOR } from './constants.js';
import { badHeader, type DynamicHeader } from './dynamic-header.js';

/** BAT entries per cached page (64 KiB of table). */
const PAGE_ENTRIES = 16384;
const PAGE_BYTES = PAGE_ENTRIES * 4;

/** Called per block in order: the file offset of its data, or -1 when the block is not stored. */
export type BlockVisitor = (block: number, dataOffset: number) => void;

/**
 * The block allocation table of a dynamic VHD, read in 64 KiB pages kept in
 * a cache bounded by LIMITS.maxTableCacheBytes. `open` walks every entry
 * once and refuses a stored block (sector bitmap + data) that reaches past
 * the trailing footer or overlaps the leading footer, the dynamic header,
 * the BAT or another block.
 */
export class VhdBat {
  readonly blockSize: number;
  readonly bitmapSize: number;
  readonly entries: number;
  readonly #source: ByteSource;
  readonly #tableOffset: number;
  readonly #cache = new Map<number, Promise<Buffer>>();
  /** Stored blocks found by the check (a block may be stored past the virtual size). */
  #stored = 0;

  private constructor(source: ByteSource, header: DynamicHeader) {
    this.#source = source;
    this.#tableOffset = header.tableOffset;
    this.blockSize = header.blockSize;
    this.bitmapSize = bitmapSize(header.blockSize);
    this.entries = header.maxTableEntries;
  }

  static async open(
    source: ByteSource,
    header: DynamicHeader,
    signal?: AbortSignal,
  ): Promise<VhdBat> {
    const bat = new VhdBat(source, header);
    await bat.#checkAll(header, signal);
    return bat;
  }

  get storedBlocks(): number {
    return this.#stored;
  }

  /** Bytes a stored block occupies in the file: its sector bitmap and its data. */
  get span(): number {
    return this.bitmapSize + this.blockSize;
  }

  /** Visits blocks [first, end) in order (end <= entries). */
  async visit(first: number, end: number, fn: BlockVisitor, signal?: AbortSignal): Promise<void> {
    let block = first;
    const limit = this.#source.size - FOOTER_SIZE;
    while (block < end) {
      throwIfAborted(signal);
      const pageNo = Math.floor(block / PAGE_ENTRIES);
      const page = await this.#page(pageNo, signal);
      const pageEnd = Math.min(end, pageNo * PAGE_ENTRIES + page.length / 4);
      for (; block < pageEnd; block++) {
        const v = page.readUInt32BE((block - pageNo * PAGE_ENTRIES) * 4);
        if (v === BAT_UNUSED) {
          fn(block, -1);
          continue;
        }
        const start = v * SECTOR;
        // Checked at open; checked again in case the page was evicted and re-read.
        if (start + this.span > limit) throw this.#pastEnd(block, start);
        fn(block, start + this.bitmapSize);
      }
    }
  }

  #pastEnd(block: number, start: number) {
    return badHeader(
      this.#source.name,
      `block ${block} (${this.span} bytes at ${start}) reaches past the end of the data area (file size ${this.#source.size})`,
      { block, offset: start, size: this.#source.size },
    );
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
    const p = this.#source.read(this.#tableOffset + first * 4, count * 4, signal);
    p.catch(() => this.#cache.delete(pageNo));
    this.#cache.set(pageNo, p);
    while (this.#cache.size * PAGE_BYTES > LIMITS.maxTableCacheBytes) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
    return p;
  }

  /**
   * Walks the whole table: every stored block must fit before the trailing
   * footer; then the sorted block starts must be at least a block span apart
   * and clear of the metadata. The list of starts is bounded by the file:
   * more blocks than the file can hold means some overlap.
   */
  async #checkAll(header: DynamicHeader, signal?: AbortSignal): Promise<void> {
    const name = this.#source.name;
    const span = this.span;
    const dataEnd = this.#source.size - FOOTER_SIZE;
    const maxBlocks = Math.floor(dataEnd / span);
    let starts = new Uint32Array(Math.min(this.entries, maxBlocks, 65536));
    let n = 0;
    await this.visit(
      0,
      this.entries,
      (block, dataOffset) => {
        if (dataOffset < 0) return;
        if (n === maxBlocks) {
          throw badHeader(
            name,
            `the BAT stores more blocks than the file can hold, so some overlap (block ${block})`,
            { block, maxBlocks },
          );
        }
        if (n === starts.length) {
          const grown = new Uint32Array(Math.min(maxBlocks, starts.length * 2));
          grown.set(starts);
          starts = grown;
        }
        starts[n++] = (dataOffset - this.bitmapSize) / SECTOR;
      },
      signal,
    );
    this.#stored = n;
    const sorted = starts.subarray(0, n).sort();
    const meta: Array<[number, number, string]> = [
      [0, FOOTER_SIZE, 'the leading footer'],
      [header.offset, HEADER_SIZE, 'the dynamic header'],
      [header.tableOffset, header.maxTableEntries * 4, 'the BAT'],
    ];
    for (let i = 0; i < n; i++) {
      throwIfAborted(signal);
      const start = sorted[i]! * SECTOR;
      const next = i + 1 < n ? sorted[i + 1]! * SECTOR : Number.POSITIVE_INFINITY;
      for (const [at, len, what] of meta) {
        if (start < at + len && at < start + span) {
          throw badHeader(name, `a stored block at file offset ${start} overlaps ${what}`, {
            offset: start,
          });
        }
      }
      if (next < start + span) {
        throw badHeader(name, `two stored blocks overlap at file offset ${next}`, {
          offset: next,
        });
      }
    }
  }
}
