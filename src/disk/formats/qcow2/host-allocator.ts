import { FerryError } from '../../../errors/index.js';
import { COMPRESSED_SECTOR } from './constants.js';

/** A finished refcount block to write: its host offset and contents. */
export interface RefcountBlock {
  readonly offset: number;
  readonly data: Buffer;
}

/**
 * Hands out host space for a qcow2 file written front to back, and counts
 * references as it goes, with 16-bit refcounts.
 *
 * Host space grows only forwards, so the refcount block of each range of
 * `cluster_size * 8 / 16` clusters is placed in the first cluster of that
 * range (block 0 in cluster 1, after the header) as soon as allocation
 * reaches it. Only the block of the current range is held in memory; finished
 * blocks are handed to the writer through `takeBlocks()`. Memory stays at one
 * cluster whatever the size of the file.
 */
export class HostAllocator {
  readonly #cs: number;
  /** Refcount entries per block. */
  readonly #perBlock: number;
  /** Host offsets of the refcount blocks, by range. */
  readonly #blocks: number[] = [];
  #range = -1;
  #block: Buffer;
  #done: RefcountBlock[] = [];
  /** Next free byte. */
  #end = 0;

  constructor(clusterSize: number) {
    this.#cs = clusterSize;
    this.#perBlock = clusterSize / 2;
    this.#block = Buffer.alloc(clusterSize);
    // Cluster 0 holds the header, cluster 1 the first refcount block.
    this.#ref(0);
    this.#blocks.push(clusterSize);
    this.#ref(1);
    this.#end = 2 * clusterSize;
  }

  /** Bytes of the file in use so far. */
  get end(): number {
    return this.#end;
  }

  /** Refcount blocks placed so far (one per range of clusters). */
  get blockCount(): number {
    return this.#blocks.length;
  }

  /** Refcount table entries: the host offset of each block. */
  get blockOffsets(): readonly number[] {
    return this.#blocks;
  }

  /** Reserves `n` contiguous, cluster-aligned clusters; returns the host offset. */
  clusters(n: number): number {
    let start = Math.ceil(this.#end / this.#cs);
    for (;;) {
      const next = this.#blocks.length * this.#perBlock;
      if (next >= start + n) break;
      start = this.#placeBlock(next);
    }
    for (let c = start; c < start + n; c++) this.#ref(c);
    this.#end = (start + n) * this.#cs;
    return start * this.#cs;
  }

  /**
   * Reserves `length` bytes for a compressed cluster at the next 512-byte
   * sector; every host cluster the bytes touch gets one more reference, as
   * qemu counts them.
   */
  bytes(length: number): number {
    let start = Math.ceil(this.#end / COMPRESSED_SECTOR) * COMPRESSED_SECTOR;
    for (;;) {
      const next = this.#blocks.length * this.#perBlock;
      if (next > Math.floor((start + length - 1) / this.#cs)) break;
      start = this.#placeBlock(next) * this.#cs;
    }
    const last = Math.floor((start + length - 1) / this.#cs);
    for (let c = Math.floor(start / this.#cs); c <= last; c++) this.#ref(c);
    this.#end = start + length;
    return start;
  }

  /** Places the refcount block of the range starting at cluster `at`; returns the next cluster. */
  #placeBlock(at: number): number {
    this.#blocks.push(at * this.#cs);
    this.#ref(at);
    return at + 1;
  }

  #ref(cluster: number): void {
    const range = Math.floor(cluster / this.#perBlock);
    if (range !== this.#range) {
      if (range < this.#range) {
        throw new FerryError('FERRY_INTERNAL', 'Cannot count qcow2 references: out of order');
      }
      if (this.#range >= 0) {
        this.#done.push({ offset: this.#blocks[this.#range]!, data: this.#block });
        this.#block = Buffer.alloc(this.#cs);
      }
      this.#range = range;
    }
    const at = (cluster - range * this.#perBlock) * 2;
    this.#block.writeUInt16BE(this.#block.readUInt16BE(at) + 1, at);
  }

  /** Finished refcount blocks not yet written. */
  takeBlocks(): RefcountBlock[] {
    return this.#done.splice(0, this.#done.length);
  }

  /** All remaining blocks, including the current one; no allocation may follow. */
  finishBlocks(): RefcountBlock[] {
    const out = this.takeBlocks();
    if (this.#range >= 0) out.push({ offset: this.#blocks[this.#range]!, data: this.#block });
    return out;
  }
}
