import { throwIfAborted } from '../../file-source.js';
import { OutputFile } from '../../output-file.js';
import type { DiskWriter, FormatWriter, WriteResult, WriterOptions } from '../../types.js';
import { WriteQueue } from '../../write-queue.js';
import { dataRuns } from '../../zero.js';

/** Writes a sparse raw file: all-zero 4 KiB units stay holes. */
class RawWriter implements DiskWriter {
  readonly format = 'raw' as const;
  readonly #out: OutputFile;
  readonly #queue: WriteQueue;
  readonly #size: number;

  /** The file started as a copy of another image: zeros must be written, not skipped. */
  readonly #patch: boolean;

  constructor(out: OutputFile, size: number, patch = false) {
    this.#out = out;
    this.#queue = new WriteQueue(out);
    this.#size = size;
    this.#patch = patch;
  }

  async write(offset: number, data: Buffer, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    this.#queue.throwFailure();
    if (this.#patch) {
      await this.#queue.write(data, offset);
      return;
    }
    for (const [from, to] of dataRuns(data)) {
      await this.#queue.write(data.subarray(from, to), offset + from);
    }
  }

  released(): Promise<void> {
    return this.#queue.barrier();
  }

  async finish(signal?: AbortSignal): Promise<WriteResult> {
    throwIfAborted(signal);
    await this.#queue.drain();
    await this.#out.truncate(this.#size);
    await this.#out.commit();
    return { fileSize: this.#size, virtualSize: this.#size };
  }

  async abort(): Promise<void> {
    await this.#queue.settle();
    await this.#out.discard();
  }
}

export const rawWriter: FormatWriter = {
  name: 'raw',
  async create(path: string, options: WriterOptions): Promise<DiskWriter> {
    const out = await OutputFile.create(path, options);
    return new RawWriter(out, options.virtualSize);
  },
};

/**
 * A raw writer over a clone of `base` (a raw image): the caller writes only
 * the windows that change, and may skip windows that equal the base; the
 * rest of the file is the base's bytes. Every write lands whole, zeros
 * included. The result is cut or extended to `virtualSize`. Null where the
 * file system cannot clone files (see OutputFile.createFromClone).
 */
export async function createRawPatch(
  path: string,
  base: string,
  options: WriterOptions,
): Promise<DiskWriter | null> {
  const out = await OutputFile.createFromClone(path, base, options);
  return out === null ? null : new RawWriter(out, options.virtualSize, true);
}
