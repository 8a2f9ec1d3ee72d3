/**
 * An instance's serial console: what QEMU writes to the serial port, kept
 * bounded to the last 64 KiB as EC2 keeps it, and saved to console.log in
 * the instance's directory (written atomically, a moment after output stops
 * or when QEMU exits) so GetConsoleOutput answers after a stop or restart.
 */
import { readFile, stat } from 'node:fs/promises';
import { writeFileAtomic } from '../../store/local-store.js';

export const CONSOLE_MAX_BYTES = 64 * 1024;
const SAVE_DELAY_MS = 300;

export class ConsoleLog {
  private data: Buffer;
  private updated: number;
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;

  private constructor(
    readonly path: string,
    data: Buffer,
    updated: number,
    private readonly now: () => number,
  ) {
    this.data = data;
    this.updated = updated;
  }

  static async open(path: string, now: () => number): Promise<ConsoleLog> {
    try {
      const [data, st] = await Promise.all([readFile(path), stat(path)]);
      return new ConsoleLog(path, data.subarray(-CONSOLE_MAX_BYTES), st.mtimeMs, now);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return new ConsoleLog(path, Buffer.alloc(0), now(), now);
    }
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const joined = chunk.length >= CONSOLE_MAX_BYTES ? chunk : Buffer.concat([this.data, chunk]);
    this.data = Buffer.from(joined.subarray(-CONSOLE_MAX_BYTES));
    this.updated = this.now();
    this.dirty = true;
    if (this.timer === undefined)
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush().catch(() => {});
      }, SAVE_DELAY_MS);
  }

  /** The console's last 64 KiB and when it last changed. */
  snapshot(): { output: Buffer; timestamp: number } {
    return { output: this.data, timestamp: this.updated };
  }

  /** Writes what is unsaved (also called when QEMU exits). */
  flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      await writeFileAtomic(this.path, this.data);
    });
    return this.saving;
  }
}
