import {
  cString,
  type FsProbe,
  isPowerOfTwo,
  type ProbeSource,
  safeProduct,
  uuidOrNull,
} from './probe-util.js';

/**
 * XFS: "XFSB" at 0, big-endian superblock. Checked like blkid's
 * xfs_verify_sb: block and sector sizes, AG count and size, a version 1-5.
 */
export async function probeXfs(src: ProbeSource): Promise<FsProbe | null> {
  const h = src.head;
  if (h.length < 512 || h.toString('latin1', 0, 4) !== 'XFSB') return null;
  const blockSize = h.readUInt32BE(4);
  const dblocks = h.readBigUInt64BE(8);
  const agBlocks = h.readUInt32BE(84);
  const agCount = h.readUInt32BE(88);
  const versionNum = h.readUInt16BE(100);
  const sectSize = h.readUInt16BE(102);
  const version = versionNum & 0xf;
  if (
    !isPowerOfTwo(blockSize) ||
    blockSize < 512 ||
    blockSize > 65536 ||
    !isPowerOfTwo(sectSize) ||
    sectSize < 512 ||
    sectSize > 32768 ||
    sectSize > blockSize ||
    agCount === 0 ||
    agBlocks === 0 ||
    dblocks === 0n ||
    version < 1 ||
    version > 5
  ) {
    return null;
  }
  return {
    type: 'xfs',
    uuid: uuidOrNull(h, 32),
    label: cString(h, 108, 12),
    size: safeProduct(dblocks, blockSize),
    // blkid reports the sector size as XFS's BLOCK_SIZE (the smallest unit it reads).
    blockSize: sectSize,
    version: String(version),
  };
}
