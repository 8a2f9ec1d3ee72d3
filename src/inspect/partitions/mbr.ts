import { FerryError } from '../../errors/index.js';
import type { Volume } from '../volume.js';
import { isExtendedType, mbrTypeId, mbrTypeName } from './partition-types.js';
import type { Partition, PartitionFinding, PartitionKind } from './types.js';

export const MBR_SECTOR = 512;
/** Logical partitions ferry accepts in one extended chain (Linux stops at 256 partitions in all). */
export const MAX_LOGICAL_PARTITIONS = 128;
/** Extended boot records walked, counting those that hold no partition. */
export const MAX_EBRS = 256;

const TABLE_OFFSET = 446;

/** One of the four 16-byte entries of an MBR or EBR. */
export interface MbrEntry {
  /** 0-3. */
  readonly slot: number;
  readonly bootFlag: number;
  readonly type: number;
  /** Start sector: absolute in the MBR, relative in EBRs. */
  readonly startLba: number;
  readonly sectors: number;
}

export function hasMbrSignature(sector: Buffer): boolean {
  return sector.length >= MBR_SECTOR && sector[510] === 0x55 && sector[511] === 0xaa;
}

export function parseMbrEntries(sector: Buffer): MbrEntry[] {
  const out: MbrEntry[] = [];
  for (let slot = 0; slot < 4; slot++) {
    const o = TABLE_OFFSET + slot * 16;
    out.push({
      slot,
      bootFlag: sector[o]!,
      type: sector[o + 4]!,
      startLba: sector.readUInt32LE(o + 8),
      sectors: sector.readUInt32LE(o + 12),
    });
  }
  return out;
}

/** The disk signature at 440, as sfdisk prints it ('0x1234abcd'). */
export function diskSignature(sector0: Buffer): string {
  return `0x${sector0.readUInt32LE(440).toString(16).padStart(8, '0')}`;
}

function mbrPartition(
  index: number,
  startLba: number,
  e: MbrEntry,
  kind: PartitionKind,
  signature: string,
): Partition {
  return {
    index,
    start: startLba * MBR_SECTOR,
    size: e.sectors * MBR_SECTOR,
    type: mbrTypeId(e.type),
    typeId: mbrTypeId(e.type),
    typeName: mbrTypeName(e.type),
    bootable: e.bootFlag === 0x80,
    name: null,
    // Linux's PARTUUID for MBR disks: the disk signature and the partition number.
    uuid: `${signature.slice(2)}-${index.toString(16).padStart(2, '0')}`,
    kind,
  };
}

/**
 * Reads the partitions of an MBR disk: the four primary slots (Linux numbers
 * them 1-4 by slot, empty slots leaving gaps) and the logical partitions of
 * the first extended partition (numbered from 5 in chain order). An entry is
 * used when its sector count is non-zero, as Linux and libfdisk decide.
 */
export async function readMbrPartitions(
  disk: Volume,
  sector0: Buffer,
  findings: PartitionFinding[],
  signal?: AbortSignal,
): Promise<Partition[]> {
  const signature = diskSignature(sector0);
  const parts: Partition[] = [];
  let active = 0;
  let extended: MbrEntry | null = null;
  for (const e of parseMbrEntries(sector0)) {
    if (e.bootFlag !== 0 && e.bootFlag !== 0x80) {
      findings.push({
        code: 'MBR_BAD_BOOT_FLAG',
        message: `MBR entry ${e.slot + 1} has the boot indicator 0x${e.bootFlag.toString(16)} (only 0x00 and 0x80 are valid)`,
      });
    }
    if (e.sectors === 0) continue;
    if (e.bootFlag === 0x80) active++;
    const isExt = isExtendedType(e.type);
    parts.push(mbrPartition(e.slot + 1, e.startLba, e, isExt ? 'extended' : 'primary', signature));
    if (!isExt) continue;
    if (extended === null) extended = e;
    else {
      findings.push({
        code: 'MBR_MULTIPLE_EXTENDED',
        message: `MBR entry ${e.slot + 1} is a second extended partition; only the first one is read`,
      });
    }
  }
  if (active > 1) {
    findings.push({
      code: 'MBR_MULTIPLE_ACTIVE',
      message: `${active} primary partitions are marked active; BIOS boot code expects exactly one`,
    });
  }
  if (extended !== null) {
    parts.push(...(await readLogicalPartitions(disk, extended, signature, findings, signal)));
  }
  return parts;
}

/**
 * Walks the chain of extended boot records. Each EBR holds a logical
 * partition (relative to the EBR) and a link to the next EBR (relative to the
 * extended partition). Data entries in slots 3 and 4 are taken only when they
 * fit, as Linux does (they are often garbage). A revisited EBR, more than
 * MAX_EBRS records or more than MAX_LOGICAL_PARTITIONS partitions is refused.
 */
async function readLogicalPartitions(
  disk: Volume,
  ext: MbrEntry,
  signature: string,
  findings: PartitionFinding[],
  signal?: AbortSignal,
): Promise<Partition[]> {
  const out: Partition[] = [];
  const extStart = ext.startLba;
  const extEnd = ext.startLba + ext.sectors;
  const diskSectors = Math.floor(disk.size / MBR_SECTOR);
  const visited = new Set<number>();
  let ebrLba = extStart;
  let linkSectors = ext.sectors;
  for (;;) {
    if (visited.has(ebrLba)) {
      throw new FerryError(
        'FERRY_PARTITION_TABLE',
        `Cannot read the extended partition: the chain of extended boot records loops back to sector ${ebrLba}`,
        { details: { sector: ebrLba, records: visited.size } },
      );
    }
    visited.add(ebrLba);
    if (visited.size > MAX_EBRS) {
      throw new FerryError(
        'FERRY_PARTITION_TABLE',
        `Cannot read the extended partition: its chain has more than ${MAX_EBRS} extended boot records`,
        { details: { limit: MAX_EBRS } },
      );
    }
    if (ebrLba >= diskSectors || ebrLba < extStart || ebrLba >= extEnd) {
      findings.push({
        code: 'MBR_EBR_OUTSIDE',
        message: `An extended boot record at sector ${ebrLba} lies outside ${ebrLba >= diskSectors ? 'the disk' : 'its extended partition'}; later logical partitions are not read`,
      });
      break;
    }
    const ebr = await disk.read(ebrLba * MBR_SECTOR, MBR_SECTOR, signal);
    if (!hasMbrSignature(ebr)) {
      findings.push({
        code: 'MBR_EBR_BAD_SIGNATURE',
        message: `The extended boot record at sector ${ebrLba} has no 0x55AA signature; later logical partitions are not read`,
      });
      break;
    }
    const entries = parseMbrEntries(ebr);
    for (const e of entries) {
      if (e.sectors === 0 || isExtendedType(e.type)) continue;
      const start = ebrLba + e.startLba;
      if (e.slot >= 2) {
        // Slots 3 and 4 of an EBR often hold garbage: keep them only when they fit.
        if (e.startLba + e.sectors > linkSectors) continue;
        if (start < extStart || start + e.sectors > extEnd) continue;
      }
      if (out.length >= MAX_LOGICAL_PARTITIONS) {
        throw new FerryError(
          'FERRY_PARTITION_TABLE',
          `Cannot read the extended partition: it holds more than ${MAX_LOGICAL_PARTITIONS} logical partitions`,
          { details: { limit: MAX_LOGICAL_PARTITIONS } },
        );
      }
      const p = mbrPartition(5 + out.length, start, e, 'logical', signature);
      out.push(p);
      if (start < extStart || start + e.sectors > extEnd) {
        findings.push({
          code: 'MBR_LOGICAL_OUTSIDE_EXTENDED',
          message: `Logical partition ${p.index} (sectors ${start}+${e.sectors}) extends beyond its extended partition (sectors ${extStart}+${ext.sectors})`,
        });
      }
    }
    const link = entries.find((e) => e.sectors !== 0 && isExtendedType(e.type));
    if (link === undefined) break;
    ebrLba = extStart + link.startLba;
    linkSectors = link.sectors;
  }
  return out;
}
