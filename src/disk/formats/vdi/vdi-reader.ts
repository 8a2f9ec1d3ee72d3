import type { ByteSource } from '../../byte-source.js';
import { ExtentBuilder } from '../../extents.js';
import { readOutOfRange } from '../../read-range.js';
import type {
  DiskImage,
  Extent,
  ExtentKind,
  FormatDetails,
  FormatReader,
  ImageWarning,
  OpenOptions,
} from '../../types.js';
import { BlockKind, BlockMap } from './block-map.js';
import { OFF, VDI_SIGNATURE } from './constants.js';
import { readVdiHeader, type VdiHeader } from './header.js';

/** Blocks walked per step of `extents()` before yielding. */
const EXTENT_STEP = 65536;

const KIND: Record<BlockKind, ExtentKind> = {
  [BlockKind.Hole]: 'hole',
  [BlockKind.Zero]: 'zero',
  [BlockKind.Data]: 'data',
};

/** A run of a read: stored bytes at `fileOffset`, or zeros. */
interface Run {
  start: number;
  length: number;
  fileOffset: number;
  data: boolean;
}

/** A dynamic or static VDI read through its block map. */
export class VdiImage implements DiskImage {
  readonly format = 'vdi' as const;
  readonly virtualSize: number;
  readonly source: ByteSource;
  readonly warnings: readonly ImageWarning[];
  readonly #map: BlockMap;
  readonly #header: VdiHeader;

  constructor(
    source: ByteSource,
    header: VdiHeader,
    map: BlockMap,
    warnings: readonly ImageWarning[],
  ) {
    this.source = source;
    this.virtualSize = header.virtualSize;
    this.warnings = warnings;
    this.#header = header;
    this.#map = map;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    readOutOfRange(this, offset, length);
    if (length === 0) return Buffer.alloc(0);
    const bs = this.#map.blockSize;
    const end = offset + length;
    const runs: Run[] = [];
    await this.#map.visit(
      Math.floor(offset / bs),
      Math.ceil(end / bs),
      (block, kind, fileOffset) => {
        const from = Math.max(offset, block * bs);
        const to = Math.min(end, (block + 1) * bs);
        const data = kind === BlockKind.Data;
        const at = data ? fileOffset + (from - block * bs) : 0;
        const last = runs[runs.length - 1];
        if (
          last !== undefined &&
          last.data === data &&
          (!data || last.fileOffset + last.length === at)
        ) {
          last.length += to - from;
        } else {
          runs.push({ start: from - offset, length: to - from, fileOffset: at, data });
        }
      },
      signal,
    );
    const only = runs[0];
    if (runs.length === 1 && only !== undefined) {
      return only.data ? this.source.read(only.fileOffset, length, signal) : Buffer.alloc(length);
    }
    const out = Buffer.alloc(length);
    await Promise.all(
      runs
        .filter((r) => r.data)
        .map(async (r) => {
          const buf = await this.source.read(r.fileOffset, r.length, signal);
          buf.copy(out, r.start);
        }),
    );
    return out;
  }

  async *extents(signal?: AbortSignal): AsyncGenerator<Extent> {
    const b = new ExtentBuilder();
    const bs = this.#map.blockSize;
    for (let first = 0; first < this.#map.diskBlocks; first += EXTENT_STEP) {
      const end = Math.min(this.#map.diskBlocks, first + EXTENT_STEP);
      await this.#map.visit(
        first,
        end,
        (block, kind) => b.push(block * bs, this.#map.blockLength(block), KIND[kind]),
        signal,
      );
      yield* b.take();
    }
    yield* b.finish();
  }

  details(): FormatDetails {
    return {
      imageType: this.#header.imageType,
      blockSize: this.#header.blockSize,
      uuid: this.#header.uuid,
      description: this.#header.description,
      blocksInImage: this.#header.blocksInImage,
      blocksAllocated: this.#header.blocksAllocated,
    };
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/** Opens a VDI: header checks, then one validating pass over the block map. */
export async function openVdi(source: ByteSource, options: OpenOptions): Promise<VdiImage> {
  const header = await readVdiHeader(source, options.signal);
  const warnings: ImageWarning[] = [];
  if (header.diskSize !== header.virtualSize) {
    warnings.push({
      code: 'VDI_ODD_SIZE',
      message: `the disk size ${header.diskSize} is not a multiple of 512; it reads as ${header.virtualSize} bytes, as qemu does`,
    });
  }
  const map = await BlockMap.open(source, header, options.signal);
  return new VdiImage(source, header, map, warnings);
}

export const vdiReader: FormatReader = {
  name: 'vdi',
  probe: (head) =>
    head.length >= OFF.signature + 4 && head.readUInt32LE(OFF.signature) === VDI_SIGNATURE,
  open: openVdi,
};
