import type { Volume } from '../volume.js';
import { detectBootCode } from './boot-code.js';
import { GPT_SECTOR_SIZES, hasGptSignature, readGpt } from './gpt.js';
import {
  diskSignature,
  hasMbrSignature,
  MBR_SECTOR,
  parseMbrEntries,
  readMbrPartitions,
} from './mbr.js';
import type { Partition, PartitionFinding, PartitionTable } from './types.js';

/** Findings kept per table; a hostile table could otherwise produce thousands. */
export const MAX_FINDINGS = 64;
const PROTECTIVE = 0xee;

/**
 * Sector 0 of a filesystem that spans the whole disk: FAT and NTFS boot
 * sectors carry 0x55AA too, LUKS1 key material may, and none of them is an MBR.
 */
function isVolumeBootSector(s: Buffer): boolean {
  const at = (o: number, text: string): boolean =>
    s.toString('latin1', o, o + text.length) === text;
  if (at(0, 'LUKS\xba\xbe') || at(0, 'XFSB')) return true;
  if (at(3, 'NTFS    ') || at(3, 'EXFAT   ')) return true;
  return (
    at(0x36, 'FAT12   ') || at(0x36, 'FAT16   ') || at(0x36, 'FAT     ') || at(0x52, 'FAT32   ')
  );
}

/** A table worth reading: every boot flag valid and at least one used entry inside the disk. */
function plausibleMbr(sector0: Buffer, diskSectors: number): boolean {
  const entries = parseMbrEntries(sector0);
  if (entries.some((e) => e.bootFlag !== 0 && e.bootFlag !== 0x80)) return false;
  return entries.some(
    (e) => e.sectors !== 0 && e.startLba >= 1 && e.startLba + e.sectors <= diskSectors,
  );
}

function checkLayout(
  parts: readonly Partition[],
  diskSize: number,
  findings: PartitionFinding[],
): void {
  for (const p of parts) {
    if (p.start + p.size > diskSize) {
      findings.push({
        code: 'PARTITION_OUTSIDE_DISK',
        message: `Partition ${p.index} (bytes ${p.start}+${p.size}) ends beyond the end of the disk (${diskSize} bytes)`,
      });
    }
    if (p.kind !== 'gpt' && p.start === 0) {
      findings.push({
        code: 'PARTITION_OVERLAPS_TABLE',
        message: `Partition ${p.index} starts at sector 0, over the MBR`,
      });
    }
  }
  // Extended partitions contain their logical partitions: compare them with the other primaries only.
  const data = parts.filter((p) => p.kind !== 'extended' && p.size > 0);
  const primaries = parts.filter(
    (p) => (p.kind === 'primary' || p.kind === 'extended') && p.size > 0,
  );
  const reported = new Set<string>();
  for (const group of [data, primaries]) {
    const sorted = [...group].sort((a, b) => a.start - b.start || a.index - b.index);
    let widest: Partition | undefined;
    for (const p of sorted) {
      if (widest !== undefined && p.start < widest.start + widest.size) {
        const key = `${widest.index}/${p.index}`;
        if (!reported.has(key)) {
          reported.add(key);
          findings.push({
            code: 'PARTITIONS_OVERLAP',
            message: `Partitions ${widest.index} and ${p.index} overlap (bytes ${p.start}..${Math.min(p.start + p.size, widest.start + widest.size)})`,
          });
        }
      }
      if (widest === undefined || p.start + p.size > widest.start + widest.size) widest = p;
    }
  }
}

export interface ReadPartitionTableOptions {
  readonly signal?: AbortSignal;
}

/**
 * Reads a disk's partition table: GPT (with its protective or hybrid MBR),
 * MBR (primaries and the extended chain), or none (a filesystem on the whole
 * disk, or nothing). Reads a few KiB plus the GPT entry arrays (at most
 * GPT_MAX_ARRAY_BYTES each) and one sector per EBR (at most MAX_EBRS).
 *
 * Throws FERRY_PARTITION_TABLE when the table cannot be read safely (see
 * PARTITION_FINDING_CODES for the policy); everything else is a finding.
 */
export async function readPartitionTable(
  disk: Volume,
  options: ReadPartitionTableOptions = {},
): Promise<PartitionTable> {
  const { signal } = options;
  const findings: PartitionFinding[] = [];
  const capped = (): PartitionFinding[] => findings.slice(0, MAX_FINDINGS);
  const sector0 = await disk.read(0, Math.min(MBR_SECTOR, disk.size), signal);
  const bootCode = detectBootCode(sector0);
  const none: PartitionTable = {
    type: 'none',
    partitions: [],
    findings: [],
    sectorSize: MBR_SECTOR,
    bootCode,
  };
  if (disk.size < 2 * MBR_SECTOR) return none;

  const mbrValid = hasMbrSignature(sector0);
  const entries = parseMbrEntries(sector0);
  const hasProtective = mbrValid && entries.some((e) => e.type === PROTECTIVE && e.sectors !== 0);
  if (hasProtective || !mbrValid) {
    const gpt = await readGpt(disk, hasProtective, findings, signal);
    if (gpt === null) {
      if (!hasProtective) return none;
      // A protective MBR without any GPT header: read it as the MBR it is, with a finding.
      findings.push({
        code: 'GPT_HEADER_MISSING',
        message:
          'The MBR has a protective 0xEE entry but there is no GPT header at LBA 1 or at the end of the disk',
      });
    } else {
      const ss = gpt.header.sectorSize;
      const others = entries.filter(
        (e) => e.type !== PROTECTIVE && e.type !== 0 && e.sectors !== 0,
      );
      const hybrid = hasProtective && others.length > 0;
      if (!mbrValid) {
        findings.push({
          code: 'GPT_NO_PROTECTIVE_MBR',
          message:
            'The disk has a GPT but no protective MBR (no 0x55AA signature): BIOS tools may see it as empty',
        });
      } else if (hybrid) {
        findings.push({
          code: 'GPT_HYBRID_MBR',
          message: `The protective MBR also lists ${others.length} other partition(s) (a hybrid MBR)`,
        });
      } else {
        const pe = entries.find((e) => e.type === PROTECTIVE)!;
        const expected = Math.min(Math.floor(disk.size / ss) - 1, 0xffffffff);
        if (pe.startLba !== 1 || pe.sectors !== expected) {
          findings.push({
            code: 'GPT_PMBR_SIZE_MISMATCH',
            message: `The protective MBR entry covers sectors ${pe.startLba}+${pe.sectors}, not 1+${expected} (the whole disk)`,
          });
        }
      }
      checkLayout(gpt.partitions, disk.size, findings);
      return {
        type: 'gpt',
        partitions: gpt.partitions,
        findings: capped(),
        sectorSize: ss,
        diskGuid: gpt.header.diskGuid,
        protectiveMbr: hasProtective && !hybrid,
        hybridMbr: hybrid,
        usable: { start: gpt.header.firstUsable * ss, end: (gpt.header.lastUsable + 1) * ss },
        bootCode,
      };
    }
  }

  if (isVolumeBootSector(sector0) && !plausibleMbr(sector0, Math.floor(disk.size / MBR_SECTOR)))
    return none;
  const partitions = await readMbrPartitions(disk, sector0, findings, signal);
  for (const ss of hasProtective ? [] : GPT_SECTOR_SIZES) {
    if (await hasGptSignature(disk, 1, ss, signal)) {
      findings.push({
        code: 'MBR_STALE_GPT',
        message:
          'There is a GPT header at LBA 1 but the MBR has no protective entry: the MBR is used, as Linux does',
      });
      break;
    }
  }
  checkLayout(partitions, disk.size, findings);
  return {
    type: 'mbr',
    partitions,
    findings: capped(),
    sectorSize: MBR_SECTOR,
    diskSignature: diskSignature(sector0),
    bootCode,
  };
}
