import { type FsProbe, has, isPowerOfTwo, type ProbeSource, paddedString } from './probe-util.js';

/**
 * vfat (FAT12/16/32), checked like blkid: a FAT magic string, or without one
 * a jump instruction and 0x55AA; then a sane geometry (sector size, cluster
 * size, reserved sectors, FAT count, media byte) and a cluster count the FAT
 * type can address. The FAT type follows Microsoft's rule (FAT32 when the
 * 16-bit FAT size is zero, else FAT12 below 4085 clusters).
 */
export async function probeFat(src: ProbeSource): Promise<FsProbe | null> {
  const b = src.head;
  if (b.length < 512) return null;
  if (has(b, 3, 'NTFS    ') || has(b, 3, 'EXFAT   ')) return null;
  const magic =
    has(b, 0x52, 'FAT32   ') ||
    has(b, 0x52, 'MSWIN') ||
    has(b, 0x36, 'FAT12   ') ||
    has(b, 0x36, 'FAT16   ') ||
    has(b, 0x36, 'FAT     ') ||
    has(b, 0x36, 'MSDOS');
  if (!magic) {
    const jump = (b[0] === 0xeb && b[2] === 0x90) || b[0] === 0xe9;
    if (!jump || b[510] !== 0x55 || b[511] !== 0xaa || b.readUInt16LE(0x1a) === 0) return null;
  }
  const sectorSize = b.readUInt16LE(0x0b);
  const spc = b[0x0d]!;
  const reserved = b.readUInt16LE(0x0e);
  const fats = b[0x10]!;
  const rootEntries = b.readUInt16LE(0x11);
  const media = b[0x15]!;
  const total = b.readUInt16LE(0x13) || b.readUInt32LE(0x20);
  const fat16Length = b.readUInt16LE(0x16);
  const fatLength = fat16Length || b.readUInt32LE(0x24);
  if (
    !isPowerOfTwo(sectorSize) ||
    sectorSize < 512 ||
    sectorSize > 4096 ||
    !isPowerOfTwo(spc) ||
    reserved === 0 ||
    fats === 0 ||
    (media < 0xf8 && media !== 0xf0) ||
    total === 0 ||
    fatLength === 0
  ) {
    return null;
  }
  const rootSectors = Math.ceil((rootEntries * 32) / sectorSize);
  const meta = reserved + fats * fatLength + rootSectors;
  if (meta >= total) return null;
  const clusters = Math.floor((total - meta) / spc);
  const fat32 = fat16Length === 0;
  const bits = fat32 ? 32 : clusters < 4085 ? 12 : 16;
  const maxClusters = bits === 12 ? 4084 : bits === 16 ? 65524 : 0x0ffffff5;
  if (clusters > maxClusters) return null;
  const ext = fat32 ? 0x42 : 0x26;
  const sig = b[ext]!;
  const serial = sig === 0x29 || sig === 0x28 ? b.readUInt32LE(ext + 1) : null;
  let label = sig === 0x29 ? paddedString(b, ext + 5, 11) : null;
  if (label === 'NO NAME') label = null;
  const hex = serial === null ? '' : serial.toString(16).toUpperCase().padStart(8, '0');
  return {
    type: 'vfat',
    uuid: serial === null ? null : `${hex.slice(0, 4)}-${hex.slice(4)}`,
    label,
    size: total * sectorSize,
    blockSize: sectorSize,
    version: `FAT${bits}`,
  };
}
