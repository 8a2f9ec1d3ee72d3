import {
  cString,
  type FsProbe,
  isPowerOfTwo,
  type ProbeSource,
  safeProduct,
  uuidOrNull,
} from './probe-util.js';

/** The primary btrfs superblock. */
export const BTRFS_SB_OFFSET = 64 * 1024;
const MAGIC = '_BHRfS_M';
const DEV_ITEM = 0xc9;
const LABEL = 0x12b;

/**
 * btrfs: "_BHRfS_M" at 64 KiB + 0x40. UUID is the filesystem id, size this
 * device's total_bytes from the device item, label up to 256 bytes of UTF-8.
 */
export async function probeBtrfs(src: ProbeSource): Promise<FsProbe | null> {
  const sb = await src.read(BTRFS_SB_OFFSET, 1024);
  if (sb === null || sb.toString('latin1', 0x40, 0x48) !== MAGIC) return null;
  const sectorSize = sb.readUInt32LE(0x90);
  const nodeSize = sb.readUInt32LE(0x94);
  if (
    !isPowerOfTwo(sectorSize) ||
    sectorSize < 512 ||
    sectorSize > 65536 ||
    !isPowerOfTwo(nodeSize)
  )
    return null;
  return {
    type: 'btrfs',
    uuid: uuidOrNull(sb, 0x20),
    label: cString(sb, LABEL, 256),
    size: safeProduct(sb.readBigUInt64LE(DEV_ITEM + 8), 1),
    blockSize: sectorSize,
  };
}
