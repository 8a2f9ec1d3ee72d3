import { type ByteSource, readSourceInto } from '../../byte-source.js';
import { ExtentBuilder } from '../../extents.js';
import { readOutOfRange } from '../../read-range.js';
import type { DiskImage, Extent, FormatReader, ImageWarning } from '../../types.js';

/** Bytes of the source examined per SEEK_DATA query when building the map. */
const MAP_WINDOW = 1024 * 1024 * 1024;

/** A raw image: the virtual disk is the source itself; holes come from SEEK_HOLE. */
export class RawImage implements DiskImage {
  readonly format = 'raw' as const;
  readonly virtualSize: number;
  readonly source: ByteSource;
  readonly warnings: readonly ImageWarning[];

  constructor(source: ByteSource, warnings: readonly ImageWarning[] = []) {
    this.source = source;
    this.virtualSize = source.size;
    this.warnings = warnings;
  }

  read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    readOutOfRange(this, offset, length);
    return this.source.read(offset, length, signal);
  }

  async readInto(target: Buffer, offset: number, signal?: AbortSignal): Promise<void> {
    readOutOfRange(this, offset, target.length);
    await readSourceInto(this.source, target, offset, signal);
  }

  async *extents(): AsyncGenerator<Extent> {
    const b = new ExtentBuilder();
    for (let off = 0; off < this.virtualSize; off += MAP_WINDOW) {
      const len = Math.min(MAP_WINDOW, this.virtualSize - off);
      const ranges =
        this.source.dataRanges === undefined
          ? [{ offset: off, length: len }]
          : await this.source.dataRanges(off, len);
      for (const r of ranges) {
        b.push(b.position, r.offset - b.position, 'hole');
        b.push(r.offset, r.length, 'data');
      }
      b.push(b.position, off + len - b.position, 'hole');
      yield* b.take();
    }
    yield* b.finish();
  }

  details(): Record<string, unknown> {
    return {};
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

export const rawReader: FormatReader = {
  name: 'raw',
  probe: () => true,
  open: async (source) => new RawImage(source),
};
