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
import { BatTable, BlockKind } from './bat.js';
import { FILE_ID_SIGNATURE } from './constants.js';
import { readActiveHeader, readFileIdentifier, type VhdxHeader } from './header.js';
import { checkLog } from './log.js';
import { readMetadata, type VhdxMetadata } from './metadata.js';
import { assertDisjoint, readRegionTable } from './region-table.js';

/** Payload blocks walked per step of `extents()` before yielding. */
const EXTENT_STEP = 65536;

const KIND: Record<BlockKind, ExtentKind> = {
  [BlockKind.Hole]: 'hole',
  [BlockKind.Zero]: 'zero',
  [BlockKind.Data]: 'data',
};

/** A run of the requested range: data at `fileOffset`, or zeros. */
interface Run {
  start: number;
  length: number;
  fileOffset: number;
  data: boolean;
}

/** A dynamic or fixed VHDX read through its BAT. */
export class VhdxImage implements DiskImage {
  readonly format = 'vhdx' as const;
  readonly virtualSize: number;
  readonly source: ByteSource;
  readonly warnings: readonly ImageWarning[];
  readonly #bat: BatTable;
  readonly #meta: VhdxMetadata;
  readonly #header: VhdxHeader;
  readonly #creator: string;

  constructor(
    source: ByteSource,
    parts: { bat: BatTable; meta: VhdxMetadata; header: VhdxHeader; creator: string },
    warnings: readonly ImageWarning[],
  ) {
    this.source = source;
    this.virtualSize = parts.meta.virtualSize;
    this.warnings = warnings;
    this.#bat = parts.bat;
    this.#meta = parts.meta;
    this.#header = parts.header;
    this.#creator = parts.creator;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    readOutOfRange(this, offset, length);
    if (length === 0) return Buffer.alloc(0);
    const bs = this.#bat.blockSize;
    const end = offset + length;
    const runs: Run[] = [];
    await this.#bat.visit(
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
    const bs = this.#bat.blockSize;
    for (let first = 0; first < this.#bat.payloadBlocks; first += EXTENT_STEP) {
      const end = Math.min(this.#bat.payloadBlocks, first + EXTENT_STEP);
      await this.#bat.visit(
        first,
        end,
        (block, kind) => b.push(block * bs, this.#bat.blockLength(block), KIND[kind]),
        signal,
      );
      yield* b.take();
    }
    yield* b.finish();
  }

  details(): FormatDetails {
    const seq = this.#header.sequence;
    return {
      blockSize: this.#meta.blockSize,
      logicalSectorSize: this.#meta.logicalSectorSize,
      physicalSectorSize: this.#meta.physicalSectorSize,
      leaveBlocksAllocated: this.#meta.leaveBlocksAllocated,
      creator: this.#creator,
      headerSequence: seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seq) : seq.toString(),
    };
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/** Opens a VHDX: identifier, active header, log check, region table, metadata, BAT. */
export async function openVhdx(source: ByteSource, options: OpenOptions): Promise<VhdxImage> {
  const { signal } = options;
  const warnings: ImageWarning[] = [];
  const creator = await readFileIdentifier(source, signal);
  const header = await readActiveHeader(source, warnings, signal);
  const log = await checkLog(source, header, signal);
  const regions = await readRegionTable(source, warnings, signal);
  const occupied = log === null ? regions.all : [...regions.all, log];
  assertDisjoint(source, occupied);
  const meta = await readMetadata(source, regions.metadata, signal);
  const bat = await BatTable.open(
    source,
    {
      region: regions.bat,
      blockSize: meta.blockSize,
      logicalSectorSize: meta.logicalSectorSize,
      virtualSize: meta.virtualSize,
    },
    occupied,
    signal,
  );
  return new VhdxImage(source, { bat, meta, header, creator }, warnings);
}

export const vhdxReader: FormatReader = {
  name: 'vhdx',
  probe: (head) => head.length >= 8 && head.toString('latin1', 0, 8) === FILE_ID_SIGNATURE,
  open: openVhdx,
};
