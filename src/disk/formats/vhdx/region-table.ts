import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { LIMITS } from '../../limits.js';
import type { ImageWarning } from '../../types.js';
import {
  BAT_REGION_GUID,
  guidText,
  HEADER_SECTION_SIZE,
  METADATA_REGION_GUID,
  MiB,
  REGION_ENTRY_SIZE,
  REGION_REQUIRED,
  REGION_SIGNATURE,
  REGION_TABLE_OFFSETS,
  REGION_TABLE_SIZE,
} from './constants.js';
import { checksumOf } from './structures.js';

/** A byte range of the file that holds one VHDX structure. */
export interface FileRegion {
  readonly name: string;
  readonly offset: number;
  readonly length: number;
}

export interface RegionTable {
  readonly bat: FileRegion;
  readonly metadata: FileRegion;
  /** Every region the table lists (known and optional unknown ones). */
  readonly all: readonly FileRegion[];
  /** 0 for the table at 192 KiB, 1 for the copy at 256 KiB. */
  readonly index: number;
}

function bad(source: ByteSource, reason: string, details: Record<string, string | number> = {}) {
  return new FerryError('FERRY_VHDX_BAD_HEADER', `Cannot open ${source.name}: ${reason}`, {
    details,
  });
}

/** Null when the 64 KiB block is not a region table (signature or CRC). */
function tableEntryCount(buf: Buffer): number | null {
  if (buf.toString('latin1', 0, 4) !== REGION_SIGNATURE) return null;
  if (checksumOf(buf) !== buf.readUInt32LE(4)) return null;
  return buf.readUInt32LE(8);
}

/**
 * Reads the region table (the copy at 192 KiB, or the one at 256 KiB when the
 * first is damaged) and checks every entry: 1 MiB aligned, inside the file,
 * no two overlapping, no unknown required region, BAT and metadata present once.
 */
export async function readRegionTable(
  source: ByteSource,
  warnings: ImageWarning[],
  signal?: AbortSignal,
): Promise<RegionTable> {
  let buf: Buffer | undefined;
  let count: number | null = null;
  let index = 0;
  for (; index < REGION_TABLE_OFFSETS.length; index++) {
    buf = await source.read(REGION_TABLE_OFFSETS[index]!, REGION_TABLE_SIZE, signal);
    count = tableEntryCount(buf);
    if (count !== null) break;
  }
  if (buf === undefined || count === null) {
    throw bad(source, 'neither VHDX region table has a valid signature and CRC-32C');
  }
  if (index > 0) {
    warnings.push({
      code: 'FERRY_VHDX_BAD_HEADER',
      message: 'The first VHDX region table is invalid; the copy at 256 KiB is used',
    });
  }
  if (count > LIMITS.maxVhdxTableEntries) {
    throw bad(
      source,
      `the region table lists ${count} entries, more than ${LIMITS.maxVhdxTableEntries}`,
      { entries: count },
    );
  }
  let bat: FileRegion | undefined;
  let metadata: FileRegion | undefined;
  const all: FileRegion[] = [];
  for (let i = 0; i < count; i++) {
    const at = 16 + i * REGION_ENTRY_SIZE;
    const id = buf.subarray(at, at + 16);
    const rawOffset = buf.readBigUInt64LE(at + 16);
    const length = buf.readUInt32LE(at + 24);
    const flags = buf.readUInt32LE(at + 28);
    const isBat = id.equals(BAT_REGION_GUID);
    const isMeta = id.equals(METADATA_REGION_GUID);
    const name = isBat ? 'BAT' : isMeta ? 'metadata' : `region ${guidText(id)}`;
    if (!isBat && !isMeta && (flags & REGION_REQUIRED) !== 0) {
      throw new FerryError(
        'FERRY_FORMAT_UNSUPPORTED',
        `Cannot open ${source.name}: the VHDX requires region ${guidText(id)}, which ferry does not know`,
        { details: { region: guidText(id) } },
      );
    }
    if (rawOffset % BigInt(MiB) !== 0n || rawOffset < BigInt(HEADER_SECTION_SIZE)) {
      throw bad(
        source,
        `the ${name} region offset ${rawOffset} is not a 1 MiB multiple past the header section`,
        {
          region: name,
          offset: rawOffset.toString(),
        },
      );
    }
    if (length === 0) throw bad(source, `the ${name} region is empty`, { region: name });
    if (rawOffset + BigInt(length) > BigInt(source.size)) {
      throw new FerryError(
        'FERRY_IMAGE_TRUNCATED',
        `Cannot open ${source.name}: the ${name} region (${rawOffset}+${length}) extends past the end of the file (${source.size})`,
        { details: { region: name, offset: rawOffset.toString(), length, size: source.size } },
      );
    }
    const region: FileRegion = { name, offset: Number(rawOffset), length };
    if (isBat) {
      if (bat !== undefined) throw bad(source, 'the region table lists the BAT twice');
      bat = region;
    } else if (isMeta) {
      if (metadata !== undefined) throw bad(source, 'the region table lists the metadata twice');
      metadata = region;
    }
    all.push(region);
  }
  if (bat === undefined) throw bad(source, 'the region table has no BAT region');
  if (metadata === undefined) throw bad(source, 'the region table has no metadata region');
  return { bat, metadata, all, index };
}

/** Throws FERRY_VHDX_BAD_HEADER when two of the regions overlap. */
export function assertDisjoint(source: ByteSource, regions: readonly FileRegion[]): void {
  const sorted = [...regions].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.length) {
      throw bad(source, `the ${prev.name} and ${cur.name} regions overlap`, {
        a: prev.name,
        b: cur.name,
        aOffset: prev.offset,
        bOffset: cur.offset,
      });
    }
  }
}
