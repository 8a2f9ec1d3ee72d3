import { FerryError } from '../../../errors/index.js';

/** Byte offset of the primary superblock within the volume, and its size. */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT_MAGIC = 0xef53;

export const COMPAT = {
  hasJournal: 0x4,
  dirIndex: 0x20,
  sparseSuper2: 0x200,
} as const;

export const RO_COMPAT = {
  sparseSuper: 0x1,
  largeFile: 0x2,
  btreeDir: 0x4,
  hugeFile: 0x8,
  gdtCsum: 0x10,
  bigalloc: 0x200,
  metadataCsum: 0x400,
} as const;

export const INCOMPAT = {
  compression: 0x1,
  filetype: 0x2,
  recover: 0x4,
  journalDev: 0x8,
  metaBg: 0x10,
  extents: 0x40,
  is64bit: 0x80,
  mmp: 0x100,
  flexBg: 0x200,
  eaInode: 0x400,
  dirdata: 0x1000,
  csumSeed: 0x2000,
  largedir: 0x4000,
  inlineData: 0x8000,
  encrypt: 0x10000,
  casefold: 0x20000,
} as const;

/** Incompatible features this reader understands (encrypt: unencrypted files only). */
const READABLE_INCOMPAT =
  INCOMPAT.filetype |
  INCOMPAT.recover |
  INCOMPAT.metaBg |
  INCOMPAT.extents |
  INCOMPAT.is64bit |
  INCOMPAT.mmp |
  INCOMPAT.flexBg |
  INCOMPAT.eaInode |
  INCOMPAT.csumSeed |
  INCOMPAT.largedir |
  INCOMPAT.inlineData |
  INCOMPAT.encrypt |
  INCOMPAT.casefold;

const INCOMPAT_NAMES: Readonly<Record<number, string>> = {
  [INCOMPAT.compression]: 'compression',
  [INCOMPAT.journalDev]: 'journal_dev',
  [INCOMPAT.dirdata]: 'dirdata',
};

/** Largest group count accepted (group numbers are 32-bit on disk). */
const MAX_GROUPS = 2 ** 32;

/** The checked superblock fields the reader uses. */
export interface ExtSuperblock {
  readonly type: 'ext2' | 'ext3' | 'ext4';
  readonly blockSize: number;
  /** Allocation cluster size (bigalloc), else the block size. */
  readonly clusterSize: number;
  readonly blocksCount: number;
  readonly inodesCount: number;
  readonly firstDataBlock: number;
  readonly blocksPerGroup: number;
  readonly inodesPerGroup: number;
  readonly inodeSize: number;
  readonly descSize: number;
  readonly groupCount: number;
  readonly firstMetaBg: number;
  readonly backupBgs: readonly [number, number];
  readonly compat: number;
  readonly incompat: number;
  readonly roCompat: number;
  readonly uuid: string;
  readonly label: string;
  readonly lastMounted: string;
  /** Group descriptor checksums are in use (gdt_csum or metadata_csum): uninit flags are meaningful. */
  readonly groupCsum: boolean;
  readonly warnings: readonly string[];
}

function corrupt(message: string, details: Record<string, number | string> = {}): FerryError {
  return new FerryError('FERRY_FS_CORRUPT', `Cannot open ext filesystem: ${message}`, {
    details,
  });
}

function cstr(buf: Buffer, start: number, length: number): string {
  const raw = buf.subarray(start, start + length);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8');
}

function formatUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** blkid's rule: ext4 when a feature beyond ext3's is on, ext3 with a journal, else ext2. */
function fsType(compat: number, incompat: number, roCompat: number): 'ext2' | 'ext3' | 'ext4' {
  const ext3Incompat = INCOMPAT.filetype | INCOMPAT.recover | INCOMPAT.metaBg;
  const ext3RoCompat = RO_COMPAT.sparseSuper | RO_COMPAT.largeFile | RO_COMPAT.btreeDir;
  if (incompat & ~ext3Incompat || roCompat & ~ext3RoCompat) return 'ext4';
  return compat & COMPAT.hasJournal ? 'ext3' : 'ext2';
}

/** True when the 1024 bytes carry the ext superblock magic. */
export function hasExtMagic(sb: Buffer): boolean {
  return sb.length >= 0x3a && sb.readUInt16LE(0x38) === EXT_MAGIC;
}

/**
 * Parses and checks an ext2/3/4 superblock (the 1024 bytes at volume offset
 * 1024). Throws FERRY_FS_CORRUPT for inconsistent geometry and
 * FERRY_FS_UNSUPPORTED for incompatible features this reader cannot read.
 */
export function parseExtSuperblock(sb: Buffer, volumeSize: number): ExtSuperblock {
  if (sb.length < SUPERBLOCK_SIZE || !hasExtMagic(sb))
    throw corrupt('the superblock magic is missing');
  const warnings: string[] = [];
  const rev = sb.readUInt32LE(0x4c);
  if (rev > 1) {
    throw new FerryError(
      'FERRY_FS_UNSUPPORTED',
      `Cannot open ext filesystem: revision ${rev} is unknown`,
      {
        details: { revision: rev },
      },
    );
  }
  const compat = rev === 0 ? 0 : sb.readUInt32LE(0x5c);
  const incompat = rev === 0 ? 0 : sb.readUInt32LE(0x60);
  const roCompat = rev === 0 ? 0 : sb.readUInt32LE(0x64);

  const unreadable = incompat & ~READABLE_INCOMPAT;
  if (unreadable !== 0) {
    const names: string[] = [];
    for (let bit = 1; bit <= 0x80000000 && bit > 0; bit *= 2) {
      if (unreadable & bit)
        names.push(INCOMPAT_NAMES[bit] ?? `unknown incompat 0x${bit.toString(16)}`);
    }
    const what = names.join(', ');
    throw new FerryError(
      'FERRY_FS_UNSUPPORTED',
      `Cannot open ext filesystem: it uses ${what}, which ferry cannot read`,
      { details: { features: what, incompat } },
    );
  }

  const logBlock = sb.readUInt32LE(0x18);
  if (logBlock > 6) throw corrupt('the block size is out of range', { logBlockSize: logBlock });
  const blockSize = 1024 * 2 ** logBlock;
  const bigalloc = (roCompat & RO_COMPAT.bigalloc) !== 0;
  let clusterSize = blockSize;
  if (bigalloc) {
    const logCluster = sb.readUInt32LE(0x1c);
    if (logCluster < logBlock || logCluster > logBlock + 16 || logCluster > 29) {
      throw corrupt('the cluster size is out of range', { logClusterSize: logCluster });
    }
    clusterSize = 1024 * 2 ** logCluster;
  }
  const is64 = (incompat & INCOMPAT.is64bit) !== 0;
  const blocksLo = sb.readUInt32LE(0x04);
  const blocksHi = is64 ? sb.readUInt32LE(0x150) : 0;
  const blocksCount = blocksHi * 2 ** 32 + blocksLo;
  if (blocksCount === 0) throw corrupt('the block count is zero');
  if (blocksCount * blockSize > Number.MAX_SAFE_INTEGER) {
    throw corrupt('the filesystem size exceeds 2^53 bytes', { blocksCount });
  }
  const inodesCount = sb.readUInt32LE(0x00);
  const firstDataBlock = sb.readUInt32LE(0x14);
  if (
    firstDataBlock > 1 ||
    (blockSize > 1024 && firstDataBlock !== 0) ||
    firstDataBlock >= blocksCount
  ) {
    throw corrupt('the first data block is invalid', { firstDataBlock, blockSize });
  }
  const blocksPerGroup = sb.readUInt32LE(0x20);
  const clustersPerGroup = sb.readUInt32LE(0x24);
  const inodesPerGroup = sb.readUInt32LE(0x28);
  const bitsPerBlock = blockSize * 8;
  if (blocksPerGroup < 8) {
    throw corrupt('the blocks per group count is invalid', { blocksPerGroup });
  }
  if (bigalloc) {
    const ratio = clusterSize / blockSize;
    if (
      clustersPerGroup === 0 ||
      clustersPerGroup > bitsPerBlock ||
      blocksPerGroup !== clustersPerGroup * ratio
    ) {
      throw corrupt('the clusters per group count is invalid', {
        clustersPerGroup,
        blocksPerGroup,
      });
    }
  } else if (blocksPerGroup > bitsPerBlock) {
    throw corrupt('the blocks per group count exceeds one bitmap block', { blocksPerGroup });
  }
  if (inodesPerGroup === 0 || inodesPerGroup > bitsPerBlock) {
    throw corrupt('the inodes per group count is invalid', { inodesPerGroup });
  }
  const inodeSize = rev === 0 ? 128 : sb.readUInt16LE(0x58);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) {
    throw corrupt('the inode size is invalid', { inodeSize });
  }
  let descSize = 32;
  if (is64) {
    descSize = sb.readUInt16LE(0xfe);
    if (descSize < 64 || descSize > 1024 || (descSize & (descSize - 1)) !== 0) {
      throw corrupt('the group descriptor size is invalid', { descSize });
    }
  }
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  if (groupCount === 0 || groupCount > MAX_GROUPS) {
    throw corrupt('the group count is out of range', { groupCount });
  }
  if (inodesCount === 0 || inodesCount > groupCount * inodesPerGroup) {
    throw corrupt('the inode count does not fit the groups', {
      inodesCount,
      groupCount,
      inodesPerGroup,
    });
  }
  // The inode table of one group must fit in the group's blocks.
  if (Math.ceil((inodesPerGroup * inodeSize) / blockSize) > blocksPerGroup) {
    throw corrupt('the inode table is larger than a block group', { inodesPerGroup, inodeSize });
  }
  const firstMetaBg = sb.readUInt32LE(0x104);
  const descPerBlock = blockSize / descSize;
  if ((incompat & INCOMPAT.metaBg) !== 0 && firstMetaBg > Math.ceil(groupCount / descPerBlock)) {
    throw corrupt('the first meta block group is past the last group', { firstMetaBg });
  }
  const fsBytes = blocksCount * blockSize;
  if (fsBytes > volumeSize) {
    warnings.push(
      `the filesystem (${fsBytes} bytes) is larger than its volume (${volumeSize} bytes): the image may be truncated`,
    );
  }
  if (incompat & INCOMPAT.recover) {
    warnings.push('the journal needs recovery: recently written data may be stale or missing');
  }
  const state = sb.readUInt16LE(0x3a);
  if (state & 0x2) warnings.push('the filesystem is marked as having errors');

  return {
    type: fsType(compat, incompat, roCompat),
    blockSize,
    clusterSize,
    blocksCount,
    inodesCount,
    firstDataBlock,
    blocksPerGroup,
    inodesPerGroup,
    inodeSize,
    descSize,
    groupCount,
    firstMetaBg,
    backupBgs: [sb.readUInt32LE(0x24c), sb.readUInt32LE(0x250)],
    compat,
    incompat,
    roCompat,
    uuid: formatUuid(sb.subarray(0x68, 0x78)),
    label: cstr(sb, 0x78, 16),
    lastMounted: cstr(sb, 0x88, 64),
    groupCsum: (roCompat & (RO_COMPAT.gdtCsum | RO_COMPAT.metadataCsum)) !== 0,
    warnings,
  };
}
