import { isFerryError } from '../errors/index.js';
import { type Finding, finding } from './findings.js';
import { type FsProbe, probeFilesystem } from './fs/probe.js';
import { type Partition, type PartitionTable, readPartitionTable } from './partitions/index.js';
import type { Volume } from './volume.js';

/** A place a filesystem may live: a partition or the whole disk. */
export interface LayoutVolume {
  readonly partition: number | null;
  readonly volume: Volume;
  readonly probe: FsProbe | null;
  /** Partition type name ('efi-system', '0x83'...) or null for the whole disk. */
  readonly partType: string | null;
  readonly partUuid: string | null;
}

export interface DiskLayout {
  readonly table: PartitionTable;
  readonly volumes: LayoutVolume[];
  readonly bootCode: PartitionTable['bootCode'];
}

function subVolume(disk: Volume, start: number, size: number): Volume {
  return {
    start,
    size,
    read: (offset, length, signal) => disk.read(start + offset, length, signal),
  };
}

/** Partition table, then a filesystem probe of each partition (or of the whole disk). */
export async function readLayout(disk: Volume, findings: Finding[]): Promise<DiskLayout> {
  let table: PartitionTable;
  try {
    table = await readPartitionTable(disk);
  } catch (error) {
    if (!isFerryError(error)) throw error;
    findings.push(
      finding(
        'PARTITION_TABLE_PROBLEM',
        `The partition table cannot be used: ${error.message} [${error.code}]`,
      ),
    );
    table = { type: 'none', partitions: [], findings: [], sectorSize: 512, bootCode: 'unknown' };
  }
  for (const f of table.findings) {
    const backup =
      f.code === 'GPT_BACKUP_MISSING' ||
      f.code === 'GPT_BACKUP_CORRUPT' ||
      f.code === 'GPT_BACKUP_MISMATCH';
    findings.push(
      finding(
        backup ? 'GPT_BACKUP_PROBLEM' : 'PARTITION_TABLE_PROBLEM',
        `${f.message} [${f.code}]`,
      ),
    );
  }
  const volumes: LayoutVolume[] = [];
  const probe = async (v: Volume): Promise<FsProbe | null> => {
    try {
      return await probeFilesystem(v);
    } catch (error) {
      if (!isFerryError(error)) throw error;
      return null;
    }
  };
  if (table.partitions.length === 0) {
    volumes.push({
      partition: null,
      volume: disk,
      probe: await probe(disk),
      partType: null,
      partUuid: null,
    });
  }
  for (const p of table.partitions as readonly Partition[]) {
    if (p.kind === 'extended' || p.size <= 0 || p.start + p.size > disk.size) continue;
    const v = subVolume(disk, p.start, p.size);
    volumes.push({
      partition: p.index,
      volume: v,
      probe: await probe(v),
      partType: p.type,
      partUuid: p.uuid ?? null,
    });
  }
  return { table, volumes, bootCode: table.bootCode };
}
