import { OutputFile } from '../../output-file.js';
import type { DiskWriter, FormatWriter, WriteResult, WriterOptions } from '../../types.js';
import { isZero } from '../../zero.js';

/** Zero-detection granularity for sparse raw output (qemu-img's -S default). */
const SPARSE_UNIT = 4096;

/** Writes a sparse raw file: all-zero 4 KiB units stay holes. */
class RawWriter implements DiskWriter {
  readonly format = 'raw' as const;
  readonly #out: OutputFile;
  readonly #size: number;

  constructor(out: OutputFile, size: number) {
    this.#out = out;
    this.#size = size;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    let runStart = -1;
    for (let u = 0; u < data.length; u += SPARSE_UNIT) {
      const unit = data.subarray(u, Math.min(u + SPARSE_UNIT, data.length));
      const zero = isZero(unit);
      if (!zero && runStart < 0) runStart = u;
      if (zero && runStart >= 0) {
        await this.#out.write(data.subarray(runStart, u), offset + runStart);
        runStart = -1;
      }
    }
    if (runStart >= 0) await this.#out.write(data.subarray(runStart), offset + runStart);
  }

  async finish(): Promise<WriteResult> {
    await this.#out.truncate(this.#size);
    await this.#out.commit();
    return { fileSize: this.#size, virtualSize: this.#size };
  }

  abort(): Promise<void> {
    return this.#out.discard();
  }
}

export const rawWriter: FormatWriter = {
  name: 'raw',
  async create(path: string, options: WriterOptions): Promise<DiskWriter> {
    const out = await OutputFile.create(path, options.overwrite ?? false);
    return new RawWriter(out, options.virtualSize);
  },
};
