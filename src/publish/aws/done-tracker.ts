/**
 * An upload's durable progress: the snapshot, and which blocks are done
 * (sent, or skipped by the rules): every block below `watermark`, and the
 * few above it in `done` (workers finish out of order).
 */
export interface EbsCheckpoint {
  readonly snapshotId: string;
  readonly watermark: number;
  readonly done: readonly number[];
  /** The content hash of the image being uploaded: a checkpoint of another image is not continued. */
  readonly contentHash?: string;
}

/**
 * Tracks finished blocks as a watermark (every block below it finished)
 * plus the few finished above it: blocks are taken in index order and
 * finish nearly in order, so the set stays about as large as the concurrency.
 */
export class DoneTracker {
  #watermark: number;
  readonly #above: Set<number>;

  constructor(from?: EbsCheckpoint) {
    this.#watermark = from?.watermark ?? 0;
    this.#above = new Set((from?.done ?? []).filter((i) => i >= this.#watermark));
    this.#advance();
  }

  isDone(index: number): boolean {
    return index < this.#watermark || this.#above.has(index);
  }

  finish(index: number): void {
    if (index < this.#watermark) return;
    this.#above.add(index);
    this.#advance();
  }

  #advance(): void {
    while (this.#above.delete(this.#watermark)) this.#watermark++;
  }

  snapshot(snapshotId: string, contentHash: string): EbsCheckpoint {
    return {
      snapshotId,
      contentHash,
      watermark: this.#watermark,
      done: [...this.#above].sort((a, b) => a - b),
    };
  }
}
