/**
 * One read of a block for every placement of a run that wants it while it
 * is fresh: placements of one image move through its blocks at about the
 * same pace, so the first to ask reads the block and the others borrow the
 * same buffer (no read, no copy) instead of reading and holding it again.
 */
import { BLOCK_SIZE, type BlockInfo, type BlockSource } from './types.js';

/** A block lent out: read-only, until release(). */
export interface BorrowedBlock {
  /** BLOCK_SIZE bytes; callers must not write to it. */
  readonly data: Buffer;
  /** Gives the block back (once; later calls do nothing). */
  release(): void;
}

/** Blocks read and blocks lent out without a read. */
export interface SharedReadStats {
  readonly reads: number;
  readonly hits: number;
}

/** A BlockSource whose blocks can be borrowed: one read for all borrowers in step. */
export interface SharedBlockSource extends BlockSource {
  borrowBlock(index: number, signal?: AbortSignal): Promise<BorrowedBlock>;
  stats(): SharedReadStats;
}

export interface ShareBlockReadsOptions {
  /**
   * Blocks kept after their last borrower released them (default 128,
   * 64 MiB), for placements a little behind. Memory: this many blocks plus
   * the ones borrowed at the time (at most the workers of all placements).
   */
  readonly keepBlocks?: number;
}

const DEFAULT_KEEP = 128;
const MAX_KEEP = 65_536;

interface Entry {
  readonly buf: Buffer;
  readonly ready: Promise<void>;
  refs: number;
  failed: boolean;
}

export function isSharedBlockSource(source: BlockSource): source is SharedBlockSource {
  return typeof (source as Partial<SharedBlockSource>).borrowBlock === 'function';
}

/**
 * Wraps `source` so that its blocks are read once for all borrowers in step.
 * readBlock() still copies into the caller's buffer (through the same
 * cache); blocks(), size and contentHash are the source's. close() closes
 * the source.
 */
export function shareBlockReads(
  source: BlockSource,
  options: ShareBlockReadsOptions = {},
): SharedBlockSource {
  const keep = Math.min(MAX_KEEP, Math.max(0, Math.floor(options.keepBlocks ?? DEFAULT_KEEP)));
  // Insertion order is recency: a hit moves its entry to the end.
  const entries = new Map<number, Entry>();
  const free: Buffer[] = [];
  let reads = 0;
  let hits = 0;

  const evict = (): void => {
    if (entries.size <= keep) return;
    for (const [index, e] of entries) {
      if (entries.size <= keep) break;
      if (e.refs > 0) continue;
      entries.delete(index);
      if (!e.failed && free.length < keep) free.push(e.buf);
    }
  };

  const borrowBlock = async (index: number, signal?: AbortSignal): Promise<BorrowedBlock> => {
    signal?.throwIfAborted();
    let e = entries.get(index);
    if (e !== undefined && !e.failed) {
      hits++;
      entries.delete(index);
      entries.set(index, e);
    } else {
      reads++;
      const buf = free.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE);
      // Read without a borrower's signal: one borrower's abort must not fail the others.
      const ready = source.readBlock(index, buf);
      const fresh: Entry = { buf, ready, refs: 0, failed: false };
      ready.catch(() => {
        fresh.failed = true;
        if (entries.get(index) === fresh) entries.delete(index);
      });
      entries.set(index, fresh);
      e = fresh;
    }
    const entry = e;
    entry.refs++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      entry.refs--;
      evict();
    };
    try {
      await entry.ready;
      signal?.throwIfAborted();
    } catch (error) {
      release();
      throw error;
    }
    return { data: entry.buf, release };
  };

  return {
    size: source.size,
    blockCount: source.blockCount,
    contentHash: source.contentHash,
    blocks: (signal?: AbortSignal): AsyncIterable<BlockInfo> => source.blocks(signal),
    borrowBlock,
    async readBlock(index: number, into: Buffer, signal?: AbortSignal): Promise<void> {
      const b = await borrowBlock(index, signal);
      try {
        b.data.copy(into, 0);
      } finally {
        b.release();
      }
    },
    stats: () => ({ reads, hits }),
    close: () => source.close(),
  };
}
