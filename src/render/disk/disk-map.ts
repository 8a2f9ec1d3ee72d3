import { FerryError } from '../../errors/index.js';
import type { Ext4Map } from '../ext4/ext4-map.js';
import { checkFsMap, type RenderFsType } from '../plan-root-fs.js';
import type { XfsMap } from '../xfs/xfs-map.js';

/** A partition of a rendered disk, in 512-byte sectors. */
export interface DiskMapPartition {
  readonly role: 'bios-boot' | 'esp' | 'root';
  readonly firstLba: number;
  readonly lastLba: number;
  readonly guid: string;
}

/** The block map of a disk render: its table and partitions, and the root filesystem's map. */
export interface DiskMap {
  readonly format: 'ferry-disk-map';
  readonly version: 1;
  readonly revision: string;
  readonly table: 'gpt' | 'mbr';
  readonly firmware: 'bios' | 'uefi' | 'both';
  readonly totalSectors: number;
  readonly diskGuid: string;
  readonly partitions: readonly DiskMapPartition[];
  /** The root filesystem's map. */
  readonly fs: Ext4Map | XfsMap;
}

function bad(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_INPUT', `Cannot use the base disk map: ${reason}`);
}

const lba = (n: unknown): n is number =>
  typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n < 2 ** 48;

/** Checks a disk map read from disk. */
export function checkDiskMap(raw: unknown, fsType: RenderFsType = 'ext4'): DiskMap {
  const m = raw as Partial<DiskMap>;
  if (m === null || typeof m !== 'object' || m.format !== 'ferry-disk-map' || m.version !== 1)
    throw bad('it is not a ferry disk map (version 1)');
  if (m.table !== 'gpt' && m.table !== 'mbr') throw bad('the table is neither gpt nor mbr');
  if (m.firmware !== 'bios' && m.firmware !== 'uefi' && m.firmware !== 'both')
    throw bad('the firmware is unknown');
  if (!lba(m.totalSectors) || m.totalSectors < 4096) throw bad('totalSectors is out of range');
  if (typeof m.diskGuid !== 'string' || !/^[0-9a-f]{32}$/.test(m.diskGuid))
    throw bad('diskGuid is malformed');
  if (typeof m.revision !== 'string') throw bad('revision is missing');
  if (!Array.isArray(m.partitions) || m.partitions.length > 4)
    throw bad('the partition list is malformed');
  const total = m.totalSectors;
  const partitions = m.partitions.map((p: Partial<DiskMapPartition> | null) => {
    if (p === null || typeof p !== 'object') throw bad('a partition is malformed');
    if (p.role !== 'bios-boot' && p.role !== 'esp' && p.role !== 'root')
      throw bad('a partition has an unknown role');
    if (!lba(p.firstLba) || !lba(p.lastLba) || p.firstLba > p.lastLba || p.lastLba >= total)
      throw bad('a partition lies outside the disk');
    if (typeof p.guid !== 'string' || !/^[0-9a-f]{32}$/.test(p.guid))
      throw bad('a partition GUID is malformed');
    return { role: p.role, firstLba: p.firstLba, lastLba: p.lastLba, guid: p.guid };
  });
  const root = partitions.find((p) => p.role === 'root');
  if (root === undefined) throw bad('it has no root partition');
  const fs = checkFsMap(fsType, m.fs);
  if (fs.blocksCount * 8 > root.lastLba - root.firstLba + 1)
    throw bad('the filesystem is larger than its partition');
  return {
    format: 'ferry-disk-map',
    version: 1,
    revision: m.revision,
    table: m.table,
    firmware: m.firmware,
    totalSectors: total,
    diskGuid: m.diskGuid,
    partitions,
    fs,
  };
}
