import type { ByteSource } from '../../byte-source.js';
import { readOutOfRange } from '../../read-range.js';
import { SliceSource } from '../../slice-source.js';
import type { DiskImage, Extent, FormatDetails, ImageWarning } from '../../types.js';
import { RawImage } from '../raw/index.js';
import { SECTOR } from './constants.js';
import type { Descriptor, ExtentLine } from './descriptor.js';

/**
 * A monolithicFlat disk: a text descriptor and one FLAT extent beside it,
 * read as raw bytes from the extent's offset (holes from SEEK_HOLE).
 */
export class FlatVmdkImage implements DiskImage {
  readonly format = 'vmdk' as const;
  readonly virtualSize: number;
  readonly source: ByteSource;
  readonly warnings: readonly ImageWarning[] = [];
  readonly #extentSource: ByteSource;
  readonly #raw: RawImage;
  readonly #descriptor: Descriptor;
  readonly #extent: ExtentLine;

  constructor(source: ByteSource, descriptor: Descriptor, extent: ExtentLine, data: ByteSource) {
    this.source = source;
    this.#descriptor = descriptor;
    this.#extent = extent;
    this.#extentSource = data;
    this.virtualSize = extent.sectors * SECTOR;
    const start = (extent.offset ?? 0) * SECTOR;
    this.#raw = new RawImage(
      new SliceSource(data, start, this.virtualSize, `${data.name}@${start}`),
    );
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    readOutOfRange(this, offset, length);
    return this.#raw.read(offset, length, signal);
  }

  extents(): AsyncIterable<Extent> {
    return this.#raw.extents();
  }

  details(): FormatDetails {
    const d = this.#descriptor;
    return {
      createType: d.createType,
      version: d.version,
      grainSize: null,
      compressed: false,
      adapterType: d.ddb.adapterType ?? null,
      hwVersion: d.ddb.virtualHWVersion ?? null,
      cid: d.cid,
      extents: [
        {
          access: this.#extent.access,
          sectors: this.#extent.sectors,
          type: this.#extent.type,
          file: this.#extent.file,
          offset: this.#extent.offset,
        },
      ],
    };
  }

  async close(): Promise<void> {
    try {
      await this.#extentSource.close();
    } finally {
      await this.source.close();
    }
  }
}
