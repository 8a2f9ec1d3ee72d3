import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { LIMITS } from '../../limits.js';
import { SECTOR } from './constants.js';
import { GrainTableCache } from './grain-table-cache.js';

/** GD bytes read per call while loading the directory. */
const GD_READ_CHUNK = 4 * 1024 * 1024;

function decodeLE32(buf: Buffer, into: Uint32Array, at: number): void {
  for (let i = 0, o = 0; o + 4 <= buf.length; i++, o += 4) into[at + i] = buf.readUInt32LE(o);
}

export interface GrainDirectoryLayout {
  /** Sector of the directory. */
  readonly gdOffset: number;
  readonly entries: number;
  readonly numGTEsPerGT: number;
  /** First sector after the header and descriptor: tables may not start before it. */
  readonly firstFreeSector: number;
}

/**
 * The grain directory (level 0) held in memory, 4 bytes per grain table, and
 * its grain tables (level 1) loaded on demand through an LRU cache. Loading
 * checks that every table lies inside the file, outside the header and
 * descriptor, and that no two tables overlap: with tables unique, walking the
 * map costs at most one step per table entry stored in the file.
 */
export class GrainDirectory {
  readonly entries: number;
  readonly #gd: Uint32Array;
  readonly #source: ByteSource;
  readonly #gtEntries: number;
  readonly #cache = new GrainTableCache(LIMITS.maxTableCacheBytes);

  private constructor(source: ByteSource, gd: Uint32Array, gtEntries: number) {
    this.#source = source;
    this.#gd = gd;
    this.entries = gd.length;
    this.#gtEntries = gtEntries;
  }

  static async load(
    source: ByteSource,
    layout: GrainDirectoryLayout,
    signal?: AbortSignal,
  ): Promise<GrainDirectory> {
    const { gdOffset, entries, numGTEsPerGT, firstFreeSector } = layout;
    const name = source.name;
    const gd = new Uint32Array(entries);
    const base = gdOffset * SECTOR;
    for (let off = 0; off < entries * 4; off += GD_READ_CHUNK) {
      const len = Math.min(GD_READ_CHUNK, entries * 4 - off);
      decodeLE32(await source.read(base + off, len, signal), gd, off / 4);
    }
    const gtBytes = numGTEsPerGT * 4;
    let prevEnd = 0;
    let ordered = true;
    for (let i = 0; i < entries; i++) {
      const sector = gd[i]!;
      if (sector === 0) continue;
      const start = sector * SECTOR;
      if (sector < firstFreeSector) {
        throw new FerryError(
          'FERRY_IMAGE_CORRUPT',
          `Cannot open vmdk image ${name}: grain table ${i} lies inside the header or descriptor`,
          { details: { index: i, sector } },
        );
      }
      if (start + gtBytes > source.size) {
        throw new FerryError(
          'FERRY_IMAGE_TRUNCATED',
          `Cannot open vmdk image ${name}: grain table ${i} lies past the end of the file`,
          { details: { index: i, sector, fileSize: source.size } },
        );
      }
      if (start < prevEnd) ordered = false;
      prevEnd = start + gtBytes;
    }
    if (!ordered) {
      // Unusual but legal order: sort a copy to look for tables that overlap.
      const sorted = gd.filter((s) => s !== 0).sort();
      for (let i = 1; i < sorted.length; i++) {
        if (sorted[i]! * SECTOR < sorted[i - 1]! * SECTOR + gtBytes) {
          throw new FerryError(
            'FERRY_IMAGE_CORRUPT',
            `Cannot open vmdk image ${name}: two grain directory entries share or overlap a grain table`,
            { details: { sector: sorted[i]! } },
          );
        }
      }
    }
    return new GrainDirectory(source, gd, numGTEsPerGT);
  }

  /** Whether any grain table is present at all. */
  get empty(): boolean {
    return this.#gd.every((s) => s === 0);
  }

  /** The grain table of directory entry `index`, or null when the entry is 0 (all holes). */
  table(index: number, signal?: AbortSignal): Promise<Uint32Array> | null {
    const sector = this.#gd[index] ?? 0;
    if (sector === 0) return null;
    return this.#cache.get(sector, async () => {
      const buf = await this.#source.read(sector * SECTOR, this.#gtEntries * 4, signal);
      const t = new Uint32Array(this.#gtEntries);
      decodeLE32(buf, t, 0);
      return t;
    });
  }

  clear(): void {
    this.#cache.clear();
  }
}
