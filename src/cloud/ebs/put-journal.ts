import { type FileHandle, open, readFile, truncate, unlink } from 'node:fs/promises';

/** One acknowledged PutSnapshotBlock of a pending snapshot. */
export interface JournalEntry {
  readonly index: number;
  /** SHA-256 of the block, 64 hex digits. */
  readonly digest: string;
  /** The x-amz-Progress the put carried, or -1. */
  readonly progress: number;
  /** When the put was made (ms since the epoch, the engine's clock). */
  readonly time: number;
}

const LINE = /^(\d{1,10}) ([0-9a-f]{64}) (-1|\d{1,3}) (\d{1,15})$/;

interface Waiter {
  readonly line: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The puts of one pending snapshot, as an append-only file of lines
 * "<index> <sha256 hex> <progress> <time ms>\n". A put is acknowledged only after its
 * line is fsynced, and its block is durable before the line is written,
 * so every line names a whole block. Puts that arrive while a write is in
 * flight are committed together with one write and one fsync (group commit).
 * A crash can leave a torn last line, of a put that was never acknowledged;
 * replay() drops it and cuts the file back to the last whole line.
 */
export class PutJournal {
  readonly path: string;
  private fh: FileHandle | null = null;
  private queue: Waiter[] = [];
  private flushing = false;

  private constructor(path: string) {
    this.path = path;
  }

  /** Opens (creating) the journal at `path` and returns it with the entries it holds. */
  static async open(path: string): Promise<{ journal: PutJournal; entries: JournalEntry[] }> {
    const entries: JournalEntry[] = [];
    let text = '';
    try {
      text = await readFile(path, 'latin1');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    let good = 0;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const m = LINE.exec(text.slice(start, nl));
      if (!m) break;
      entries.push({
        index: Number(m[1]),
        digest: m[2]!,
        progress: Number(m[3]),
        time: Number(m[4]),
      });
      start = nl + 1;
      good = start;
    }
    if (good < text.length) await truncate(path, good);
    const journal = new PutJournal(path);
    journal.fh = await open(path, 'a', 0o644);
    if (good < text.length || text.length === 0) await journal.fh.sync();
    return { journal, entries };
  }

  /** Records a put (its block already durable). Resolves once the line is durable. */
  append(entry: JournalEntry): Promise<void> {
    const line = `${entry.index} ${entry.digest} ${entry.progress} ${Math.floor(entry.time)}\n`;
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          const fh = this.fh;
          if (fh === null) throw new Error(`journal ${this.path} is closed`);
          await fh.write(batch.map((w) => w.line).join(''));
          await fh.sync();
          for (const w of batch) w.resolve();
        } catch (error) {
          for (const w of batch) w.reject(error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  /** Closes and deletes the journal (the snapshot's record now holds its blocks). */
  async remove(): Promise<void> {
    await this.close();
    await unlink(this.path).catch(() => {});
  }
}
