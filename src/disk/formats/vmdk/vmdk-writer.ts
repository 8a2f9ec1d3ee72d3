import { basename } from 'node:path';
import { throwIfAborted } from '../../file-source.js';
import { OutputFile } from '../../output-file.js';
import type { DiskWriter, FormatWriter, WriteResult, WriterOptions } from '../../types.js';
import { VmdkStreamWriter } from './stream-writer.js';

/** A stream-optimized VMDK file: VmdkStreamWriter at offset 0 of a temporary file, renamed on finish. */
class VmdkWriter implements DiskWriter {
  readonly format = 'vmdk' as const;
  readonly #out: OutputFile;
  readonly #stream: VmdkStreamWriter;

  constructor(out: OutputFile, stream: VmdkStreamWriter) {
    this.#out = out;
    this.#stream = stream;
  }

  async write(offset: number, data: Buffer, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    await this.#stream.write(offset, data);
  }

  async finish(signal?: AbortSignal): Promise<WriteResult> {
    throwIfAborted(signal);
    const fileSize = await this.#stream.finish();
    await this.#out.truncate(fileSize);
    throwIfAborted(signal);
    await this.#out.commit();
    return { fileSize, virtualSize: this.#stream.virtualSize };
  }

  async abort(): Promise<void> {
    await this.#stream.abort();
    await this.#out.discard();
  }
}

export const vmdkWriter: FormatWriter = {
  name: 'vmdk',
  async create(path: string, options: WriterOptions): Promise<DiskWriter> {
    const out = await OutputFile.create(path, options);
    try {
      const stream = new VmdkStreamWriter(out, 0, options.virtualSize, {
        extentName: basename(path),
      });
      return new VmdkWriter(out, stream);
    } catch (error) {
      await out.discard();
      throw error;
    }
  },
};
