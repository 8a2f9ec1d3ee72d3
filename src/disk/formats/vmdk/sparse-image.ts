import type { ByteSource } from '../../byte-source.js';
import { ExtentBuilder } from '../../extents.js';
import { throwIfAborted } from '../../file-source.js';
import { readOutOfRange } from '../../read-range.js';
import type { DiskImage, Extent, ExtentKind, FormatDetails, ImageWarning } from '../../types.js';
import { FLAG_ZEROED_GRAIN_GTE, GRAIN_MARKER_HEADER, GTE_ZEROED, SECTOR } from './constants.js';
import type { Descriptor } from './descriptor.js';
import { badGrain, type GrainShape, inflateGrain, markerPayload } from './grain.js';
import type { GrainDirectory } from './grain-directory.js';
import { isCompressed, type SparseHeader } from './header.js';

/** Grain tables fetched ahead while walking the allocation map. */
const TABLES_AHEAD = 16;
/** Largest file span read at once for a run of compressed grains. */
const MAX_PACKED_SPAN = 16 * 1024 * 1024;

interface PlainSegment {
  host: number;
  dst: number;
  len: number;
}

interface PackedGrain {
  readonly shape: GrainShape;
  readonly sector: number;
  readonly dst: number;
  readonly inGrain: number;
  readonly len: number;
}

export interface SparseParts {
  /** The header in force (the footer's, for a GD_AT_END stream). */
  readonly header: SparseHeader;
  readonly gdAtEnd: boolean;
  readonly descriptor: Descriptor;
  readonly directory: GrainDirectory;
  readonly warnings: readonly ImageWarning[];
}

/**
 * A hosted sparse extent (monolithicSparse or streamOptimized): grains
 * located through the grain directory and grain tables; stream grains are
 * zlib streams behind grain markers, inflated on the thread pool.
 */
export class SparseVmdkImage implements DiskImage {
  readonly format = 'vmdk' as const;
  readonly virtualSize: number;
  readonly source: ByteSource;
  readonly warnings: readonly ImageWarning[];
  readonly #parts: SparseParts;
  readonly #dir: GrainDirectory;
  readonly #grainBytes: number;
  readonly #grainSectors: number;
  readonly #gtEntries: number;
  readonly #compressed: boolean;
  readonly #zeroGte: boolean;
  /** Grains may not start inside the header or the embedded descriptor. */
  readonly #firstDataSector: number;

  constructor(source: ByteSource, parts: SparseParts) {
    const h = parts.header;
    this.source = source;
    this.#parts = parts;
    this.warnings = parts.warnings;
    this.#dir = parts.directory;
    this.virtualSize = h.capacity * SECTOR;
    this.#grainSectors = h.grainSize;
    this.#grainBytes = h.grainSize * SECTOR;
    this.#gtEntries = h.numGTEsPerGT;
    this.#compressed = isCompressed(h);
    this.#zeroGte = (h.flags & FLAG_ZEROED_GRAIN_GTE) !== 0;
    this.#firstDataSector = h.descriptorOffset + h.descriptorSize;
  }

  #validBytes(grain: number): number {
    return Math.min(this.#grainBytes, this.virtualSize - grain * this.#grainBytes);
  }

  /** Classifies a grain table entry, refusing grains outside the file or inside the header. */
  #kind(grain: number, gte: number): ExtentKind {
    if (gte === 0) return 'hole';
    if (gte === GTE_ZEROED && this.#zeroGte) return 'zero';
    const name = this.source.name;
    if (gte < this.#firstDataSector) {
      throw badGrain(name, grain, 'points into the header or descriptor', { sector: gte });
    }
    const need = this.#compressed ? GRAIN_MARKER_HEADER : this.#validBytes(grain);
    if (gte * SECTOR + need > this.source.size) {
      throw badGrain(name, grain, 'lies past the end of the file', {
        sector: gte,
        fileSize: this.source.size,
      });
    }
    return 'data';
  }

  async *extents(signal?: AbortSignal): AsyncGenerator<Extent> {
    const b = new ExtentBuilder();
    const gb = this.#grainBytes;
    const totalGrains = Math.ceil(this.virtualSize / gb);
    const entries = this.#dir.entries;
    let ahead = 0;
    for (let i = 0; i < entries; i++) {
      throwIfAborted(signal);
      for (; ahead < Math.min(entries, i + TABLES_AHEAD); ahead++) {
        this.#dir.table(ahead, signal)?.catch(() => {});
      }
      const first = i * this.#gtEntries;
      const last = Math.min(first + this.#gtEntries, totalGrains);
      const pending = this.#dir.table(i, signal);
      if (pending === null) {
        b.push(first * gb, Math.min(last * gb, this.virtualSize) - first * gb, 'hole');
      } else {
        const table = await pending;
        for (let g = first; g < last; g++) {
          b.push(g * gb, this.#validBytes(g), this.#kind(g, table[g - first]!));
        }
      }
      yield* b.take();
    }
    yield* b.finish();
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    readOutOfRange(this, offset, length);
    throwIfAborted(signal);
    if (length === 0) return Buffer.alloc(0);
    const gb = this.#grainBytes;
    const end = offset + length;
    const plain: PlainSegment[] = [];
    const packed: PackedGrain[] = [];
    let tableIndex = -1;
    let table: Uint32Array | null = null;
    let gaps = false;
    for (let g = Math.floor(offset / gb); g * gb < end; g++) {
      const index = Math.floor(g / this.#gtEntries);
      if (index !== tableIndex) {
        tableIndex = index;
        table = (await this.#dir.table(index, signal)) ?? null;
      }
      const gte = table === null ? 0 : table[g % this.#gtEntries]!;
      if (this.#kind(g, gte) !== 'data') {
        gaps = true;
        continue;
      }
      const gStart = g * gb;
      const from = Math.max(offset, gStart);
      const len = Math.min(end, gStart + gb) - from;
      if (this.#compressed) {
        const shape = {
          grain: g,
          lba: g * this.#grainSectors,
          grainBytes: gb,
          validBytes: this.#validBytes(g),
        };
        packed.push({ shape, sector: gte, dst: from - offset, inGrain: from - gStart, len });
        continue;
      }
      const host = gte * SECTOR + (from - gStart);
      const last = plain[plain.length - 1];
      if (
        last !== undefined &&
        last.host + last.len === host &&
        last.dst + last.len === from - offset
      ) {
        last.len += len;
      } else {
        plain.push({ host, dst: from - offset, len });
      }
    }
    if (plain.length === 1 && plain[0]!.len === length) {
      return this.source.read(plain[0]!.host, length, signal);
    }
    // Every byte is copied in below unless some grain is a hole or zero.
    const out = gaps ? Buffer.alloc(length) : Buffer.allocUnsafe(length);
    await Promise.all([
      ...plain.map(async (s) => {
        (await this.source.read(s.host, s.len, signal)).copy(out, s.dst);
      }),
      this.#readPacked(packed, out, signal),
    ]);
    return out;
  }

  /**
   * Reads runs of neighbouring compressed grains with one read each, then
   * inflates every grain of the request in parallel.
   */
  async #readPacked(grains: PackedGrain[], out: Buffer, signal?: AbortSignal): Promise<void> {
    if (grains.length === 0) return;
    grains.sort((a, b) => a.sector - b.sector);
    // A grain marker and its data span at most 12 bytes + two grains.
    const reach = GRAIN_MARKER_HEADER + 2 * this.#grainBytes;
    const runs: PackedGrain[][] = [];
    let run: PackedGrain[] = [];
    for (const g of grains) {
      const first = run[0];
      const prev = run[run.length - 1];
      if (
        first !== undefined &&
        prev !== undefined &&
        (g.sector * SECTOR > prev.sector * SECTOR + reach ||
          g.sector * SECTOR + reach - first.sector * SECTOR > MAX_PACKED_SPAN)
      ) {
        runs.push(run);
        run = [];
      }
      run.push(g);
    }
    runs.push(run);
    const name = this.source.name;
    await Promise.all(
      runs.map(async (r) => {
        const start = r[0]!.sector * SECTOR;
        const stop = Math.min(this.source.size, r[r.length - 1]!.sector * SECTOR + reach);
        const buf = await this.source.read(start, stop - start, signal);
        await Promise.all(
          r.map(async (g) => {
            const at = buf.subarray(g.sector * SECTOR - start);
            const grain = await inflateGrain(markerPayload(at, g.shape, name), g.shape, name);
            grain.copy(out, g.dst, g.inGrain, g.inGrain + g.len);
          }),
        );
      }),
    );
  }

  details(): FormatDetails {
    const { header: h, descriptor: d, gdAtEnd } = this.#parts;
    return {
      createType: d.createType,
      version: h.version,
      grainSize: this.#grainBytes,
      compressed: this.#compressed,
      adapterType: d.ddb.adapterType ?? null,
      hwVersion: d.ddb.virtualHWVersion ?? null,
      cid: d.cid,
      gdAtEnd,
      zeroedGrainEntries: this.#zeroGte,
      uncleanShutdown: h.uncleanShutdown !== 0,
      extents: d.extents.map((e) => ({
        access: e.access,
        sectors: e.sectors,
        type: e.type,
        file: e.file,
      })),
    };
  }

  async close(): Promise<void> {
    this.#dir.clear();
    await this.source.close();
  }
}
