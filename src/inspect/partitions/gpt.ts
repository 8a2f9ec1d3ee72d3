import { FerryError } from '../../errors/index.js';
import { crc32 } from '../../util/crc32.js';
import type { Volume } from '../volume.js';
import { formatGuid, isZeroGuid } from './guid.js';
import { gptTypeName } from './partition-types.js';
import type { Partition, PartitionFinding } from './types.js';

/** GPT entries ferry reads (UEFI asks for at least 128; tools write 128). */
export const GPT_MAX_ENTRIES = 1024;
/** Largest entry size (UEFI: 128 * 2^n) and entry array ferry reads. */
export const GPT_MAX_ENTRY_SIZE = 4096;
export const GPT_MAX_ARRAY_BYTES = 1024 * 1024;
/** Logical sector sizes tried: 512 first, then 4Kn. */
export const GPT_SECTOR_SIZES = [512, 4096] as const;

const SIGNATURE = Buffer.from('EFI PART', 'latin1');
const HEADER_MIN = 92;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export interface GptHeader {
  readonly sectorSize: number;
  readonly myLba: number;
  readonly alternateLba: bigint;
  readonly firstUsable: number;
  readonly lastUsable: number;
  readonly diskGuid: string;
  readonly entriesLba: number;
  readonly count: number;
  readonly entrySize: number;
  readonly entriesCrc: number;
}

/** One copy of the GPT (primary or backup): absent, present but unusable, or usable. */
export type GptCopy =
  | { readonly state: 'absent' }
  | { readonly state: 'invalid'; readonly reason: string }
  | { readonly state: 'valid'; readonly header: GptHeader; readonly entries: Buffer };

export async function hasGptSignature(
  disk: Volume,
  lba: number,
  sectorSize: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const at = lba * sectorSize;
  if (at + SIGNATURE.length > disk.size) return false;
  return (await disk.read(at, SIGNATURE.length, signal)).equals(SIGNATURE);
}

/**
 * Reads and checks the GPT header at `lba` and its entry array: signature,
 * header size and CRC, its own LBA, usable range, entry count and size caps,
 * an entry array that lies inside the disk outside the usable range, and the
 * array CRC. Nothing read here is trusted before it is checked.
 */
export async function readGptCopy(
  disk: Volume,
  lba: number,
  sectorSize: number,
  signal?: AbortSignal,
): Promise<GptCopy> {
  const diskSectors = BigInt(Math.floor(disk.size / sectorSize));
  if (lba < 1 || BigInt(lba) >= diskSectors) return { state: 'absent' };
  const sector = await disk.read(lba * sectorSize, sectorSize, signal);
  if (!sector.subarray(0, 8).equals(SIGNATURE)) return { state: 'absent' };
  const invalid = (reason: string): GptCopy => ({ state: 'invalid', reason });
  const headerSize = sector.readUInt32LE(12);
  if (headerSize < HEADER_MIN || headerSize > sectorSize) {
    return invalid(`the header size ${headerSize} is outside ${HEADER_MIN}..${sectorSize}`);
  }
  const copy = Buffer.from(sector.subarray(0, headerSize));
  copy.writeUInt32LE(0, 16);
  const stored = sector.readUInt32LE(16);
  const computed = crc32(copy);
  if (stored !== computed) {
    return invalid(
      `the header CRC is 0x${stored.toString(16)}, computed 0x${computed.toString(16)}`,
    );
  }
  const myLba = sector.readBigUInt64LE(24);
  const alternateLba = sector.readBigUInt64LE(32);
  const firstUsable = sector.readBigUInt64LE(40);
  const lastUsable = sector.readBigUInt64LE(48);
  const entriesLba = sector.readBigUInt64LE(72);
  const count = sector.readUInt32LE(80);
  const entrySize = sector.readUInt32LE(84);
  if (myLba !== BigInt(lba)) return invalid(`the header says it is at LBA ${myLba}, not ${lba}`);
  if (count > GPT_MAX_ENTRIES)
    return invalid(`it has ${count} entries (ferry reads at most ${GPT_MAX_ENTRIES})`);
  if (entrySize < 128 || entrySize % 8 !== 0 || entrySize > GPT_MAX_ENTRY_SIZE) {
    return invalid(
      `the entry size ${entrySize} is not a multiple of 8 in 128..${GPT_MAX_ENTRY_SIZE}`,
    );
  }
  const arrayBytes = count * entrySize;
  if (arrayBytes > GPT_MAX_ARRAY_BYTES) {
    return invalid(
      `the entry array is ${arrayBytes} bytes (ferry reads at most ${GPT_MAX_ARRAY_BYTES})`,
    );
  }
  const ss = BigInt(sectorSize);
  for (const [name, v] of [
    ['first usable LBA', firstUsable],
    ['last usable LBA', lastUsable],
    ['entry array LBA', entriesLba],
  ] as const) {
    if ((v + 1n) * ss > MAX_SAFE) return invalid(`the ${name} ${v} is beyond 2^53 bytes`);
  }
  if (firstUsable > lastUsable)
    return invalid(`the first usable LBA ${firstUsable} is after the last ${lastUsable}`);
  if (firstUsable >= diskSectors)
    return invalid(
      `the first usable LBA ${firstUsable} is beyond the disk (${diskSectors} sectors)`,
    );
  const arraySectors = (BigInt(arrayBytes) + ss - 1n) / ss;
  const arrayEnd = entriesLba + arraySectors;
  if (entriesLba < 1n || arrayEnd > diskSectors) {
    return invalid(
      `the entry array (LBA ${entriesLba}, ${arraySectors} sectors) is not inside the disk`,
    );
  }
  if (entriesLba <= BigInt(lba) && BigInt(lba) < arrayEnd && arraySectors > 0n) {
    return invalid(
      `the entry array (LBA ${entriesLba}, ${arraySectors} sectors) covers the header`,
    );
  }
  if (arraySectors > 0n && entriesLba <= lastUsable && arrayEnd > firstUsable) {
    return invalid(
      `the entry array (LBA ${entriesLba}, ${arraySectors} sectors) overlaps the usable area`,
    );
  }
  const entries =
    arrayBytes === 0
      ? Buffer.alloc(0)
      : await disk.read(Number(entriesLba) * sectorSize, arrayBytes, signal);
  const storedArray = sector.readUInt32LE(88);
  const computedArray = crc32(entries);
  if (storedArray !== computedArray) {
    return invalid(
      `the entry array CRC is 0x${storedArray.toString(16)}, computed 0x${computedArray.toString(16)}`,
    );
  }
  return {
    state: 'valid',
    entries,
    header: {
      sectorSize,
      myLba: lba,
      alternateLba,
      firstUsable: Number(firstUsable),
      lastUsable: Number(lastUsable),
      diskGuid: formatGuid(sector, 56),
      entriesLba: Number(entriesLba),
      count,
      entrySize,
      entriesCrc: storedArray,
    },
  };
}

/** How two valid copies disagree, or null when they match. */
function compareCopies(primary: GptHeader, backup: GptHeader): string | null {
  if (backup.alternateLba !== 1n)
    return `the backup header points to LBA ${backup.alternateLba} for the primary, not 1`;
  if (backup.diskGuid !== primary.diskGuid) return 'the disk GUIDs differ';
  if (backup.firstUsable !== primary.firstUsable || backup.lastUsable !== primary.lastUsable) {
    return 'the usable ranges differ';
  }
  if (
    backup.count !== primary.count ||
    backup.entrySize !== primary.entrySize ||
    backup.entriesCrc !== primary.entriesCrc
  ) {
    return 'the entry arrays differ';
  }
  return null;
}

export interface GptResult {
  readonly header: GptHeader;
  readonly partitions: Partition[];
}

/**
 * Finds and reads a GPT. Returns null when there is no GPT header at all
 * (neither at LBA 1 nor, when `tryBackupOnly`, at the last LBA). Uses the
 * primary copy when it is valid, else the backup (a finding); throws
 * FERRY_PARTITION_TABLE when no copy is usable. Checks the backup against
 * the primary (findings only).
 */
export async function readGpt(
  disk: Volume,
  tryBackupOnly: boolean,
  findings: PartitionFinding[],
  signal?: AbortSignal,
): Promise<GptResult | null> {
  let sectorSize = 0;
  let primary: GptCopy = { state: 'absent' };
  for (const ss of GPT_SECTOR_SIZES) {
    primary = await readGptCopy(disk, 1, ss, signal);
    if (primary.state !== 'absent') {
      sectorSize = ss;
      break;
    }
  }
  if (primary.state === 'valid') {
    await checkBackup(disk, primary.header, findings, signal);
    return {
      header: primary.header,
      partitions: gptPartitions(primary.header, primary.entries, disk.size, findings),
    };
  }
  if (primary.state === 'absent' && !tryBackupOnly) return null;
  let backup: GptCopy = { state: 'absent' };
  for (const ss of sectorSize === 0 ? GPT_SECTOR_SIZES : [sectorSize]) {
    backup = await readGptCopy(disk, Math.floor(disk.size / ss) - 1, ss, signal);
    if (backup.state !== 'absent') break;
  }
  if (primary.state === 'absent' && backup.state === 'absent') return null;
  const primaryProblem =
    primary.state === 'invalid' ? primary.reason : 'there is no primary header';
  if (backup.state !== 'valid') {
    throw new FerryError(
      'FERRY_PARTITION_TABLE',
      `Cannot read the GPT: the primary copy is unusable (${primaryProblem}) and so is the backup (${backup.state === 'invalid' ? backup.reason : 'there is no backup header at the last LBA'})`,
      {
        details: {
          primary: primaryProblem,
          backup: backup.state === 'invalid' ? backup.reason : 'absent',
        },
      },
    );
  }
  findings.push({
    code: 'GPT_PRIMARY_CORRUPT',
    message: `The primary GPT is unusable (${primaryProblem}); the backup copy at the end of the disk is used`,
  });
  return {
    header: backup.header,
    partitions: gptPartitions(backup.header, backup.entries, disk.size, findings),
  };
}

async function checkBackup(
  disk: Volume,
  primary: GptHeader,
  findings: PartitionFinding[],
  signal?: AbortSignal,
): Promise<void> {
  const ss = primary.sectorSize;
  const lastLba = Math.floor(disk.size / ss) - 1;
  if (primary.alternateLba !== BigInt(lastLba)) {
    const alt =
      primary.alternateLba < BigInt(lastLba)
        ? primary.alternateLba > BigInt(primary.lastUsable)
          ? await readGptCopy(disk, Number(primary.alternateLba), ss, signal)
          : ({ state: 'absent' } as const)
        : null;
    const where =
      alt === null
        ? 'which is beyond the end of the disk (a truncated image?)'
        : alt.state === 'valid'
          ? 'where it is (the image was probably grown without moving the backup GPT)'
          : 'but there is no valid backup there either';
    findings.push({
      code: 'GPT_BACKUP_MISMATCH',
      message: `The primary GPT places its backup at LBA ${primary.alternateLba}, not at the last LBA ${lastLba}, ${where}`,
    });
    return;
  }
  const backup = await readGptCopy(disk, lastLba, ss, signal);
  if (backup.state === 'absent') {
    findings.push({
      code: 'GPT_BACKUP_MISSING',
      message: `There is no backup GPT header at the last LBA ${lastLba}`,
    });
  } else if (backup.state === 'invalid') {
    findings.push({
      code: 'GPT_BACKUP_CORRUPT',
      message: `The backup GPT at LBA ${lastLba} is unusable: ${backup.reason}`,
    });
  } else {
    const diff = compareCopies(primary, backup.header);
    if (diff !== null) {
      findings.push({
        code: 'GPT_BACKUP_MISMATCH',
        message: `The backup GPT disagrees with the primary: ${diff}`,
      });
    }
  }
}

function gptPartitions(
  h: GptHeader,
  entries: Buffer,
  diskSize: number,
  findings: PartitionFinding[],
): Partition[] {
  const ss = BigInt(h.sectorSize);
  const out: Partition[] = [];
  const diskSectors = Math.floor(diskSize / h.sectorSize);
  if (h.lastUsable >= diskSectors) {
    findings.push({
      code: 'GPT_LAST_USABLE_BEYOND_DISK',
      message: `The GPT's last usable LBA ${h.lastUsable} is beyond the disk's last LBA ${diskSectors - 1}`,
    });
  }
  for (let i = 0; i < h.count; i++) {
    const o = i * h.entrySize;
    if (isZeroGuid(entries, o)) continue;
    const first = entries.readBigUInt64LE(o + 32);
    const last = entries.readBigUInt64LE(o + 40);
    if (last < first || (last + 1n) * ss > MAX_SAFE) {
      findings.push({
        code: 'GPT_ENTRY_INVALID',
        message: `GPT entry ${i + 1} spans LBA ${first}..${last}, which is not a valid range; it is ignored`,
      });
      continue;
    }
    const attrs = entries.readBigUInt64LE(o + 48);
    const nameRaw = entries.subarray(o + 56, o + 128).toString('utf16le');
    const nul = nameRaw.indexOf('\0');
    const typeGuid = formatGuid(entries, o);
    const typeName = gptTypeName(typeGuid);
    out.push({
      index: i + 1,
      start: Number(first * ss),
      size: Number((last - first + 1n) * ss),
      type: typeName === 'unknown' ? typeGuid : typeName,
      typeId: typeGuid,
      typeName,
      bootable: (attrs & 4n) !== 0n,
      name: nul === -1 ? nameRaw : nameRaw.slice(0, nul),
      uuid: formatGuid(entries, o + 16),
      kind: 'gpt',
      attributes: `0x${attrs.toString(16).padStart(16, '0')}`,
    });
    if (first < BigInt(h.firstUsable) || last > BigInt(h.lastUsable)) {
      findings.push({
        code: 'GPT_PARTITION_OUTSIDE_USABLE',
        message: `GPT partition ${i + 1} (LBA ${first}..${last}) lies outside the usable range ${h.firstUsable}..${h.lastUsable}`,
      });
    }
  }
  return out;
}
