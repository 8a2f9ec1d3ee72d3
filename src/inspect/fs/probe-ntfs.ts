import { type FsProbe, has, isPowerOfTwo, type ProbeSource, safeProduct } from './probe-util.js';

const MFT_RECORD_VOLUME = 3;
const AT_VOLUME_NAME = 0x60;
const AT_END = 0xffffffff;
/** Largest MFT record ferry reads for the label (NTFS uses 1 KiB or 4 KiB). */
const MAX_RECORD = 4096;

/**
 * Applies the update sequence array of an MFT record in place: the last two
 * bytes of each 512-byte stride must hold the sequence number, and are
 * replaced by the saved bytes. False when the record is torn or malformed.
 */
function applyFixups(rec: Buffer): boolean {
  const usaOffset = rec.readUInt16LE(4);
  const usaCount = rec.readUInt16LE(6);
  if (usaCount < 1 || usaOffset + usaCount * 2 > rec.length || (usaCount - 1) * 512 > rec.length)
    return false;
  const usn = rec.readUInt16LE(usaOffset);
  for (let i = 1; i < usaCount; i++) {
    const end = i * 512 - 2;
    if (rec.readUInt16LE(end) !== usn) return false;
    rec.writeUInt16LE(rec.readUInt16LE(usaOffset + i * 2), end);
  }
  return true;
}

/** The $VOLUME_NAME attribute of the $Volume record, or null. */
function volumeName(rec: Buffer): string | null {
  if (!has(rec, 0, 'FILE') || !applyFixups(rec)) return null;
  let off = rec.readUInt16LE(0x14);
  const used = Math.min(rec.readUInt32LE(0x18), rec.length);
  for (let n = 0; n < 64 && off + 16 <= used; n++) {
    const type = rec.readUInt32LE(off);
    const len = rec.readUInt32LE(off + 4);
    if (type === AT_END || len < 16 || off + len > used) return null;
    if (type === AT_VOLUME_NAME) {
      if (rec[off + 8] !== 0 || off + 24 > used) return null; // must be resident
      const valueLen = rec.readUInt32LE(off + 16);
      const valueOff = rec.readUInt16LE(off + 20);
      if (valueOff + valueLen > len) return null;
      const s = rec.toString('utf16le', off + valueOff, off + valueOff + valueLen - (valueLen % 2));
      return s.length === 0 ? null : s;
    }
    off += len;
  }
  return null;
}

/**
 * NTFS: "NTFS    " OEM id at 3 and a boot sector that passes blkid's checks
 * (sector and cluster sizes, zeroed FAT fields, MFT record size, $MFT inside
 * the volume, "FILE" records). UUID is the 64-bit volume serial; the label
 * comes from $Volume (one small read of MFT records 0-3).
 */
export async function probeNtfs(src: ProbeSource): Promise<FsProbe | null> {
  const b = src.head;
  if (b.length < 512 || !has(b, 3, 'NTFS    ')) return null;
  const sectorSize = b.readUInt16LE(0x0b);
  if (!isPowerOfTwo(sectorSize) || sectorSize < 256 || sectorSize > 4096) return null;
  const spcRaw = b[0x0d]!;
  let spc: number;
  if (spcRaw >= 1 && spcRaw <= 128 && isPowerOfTwo(spcRaw)) spc = spcRaw;
  else if (spcRaw >= 240 && spcRaw <= 249) spc = 2 ** (256 - spcRaw);
  else return null;
  const clusterSize = sectorSize * spc;
  if (clusterSize > 2 * 1024 * 1024) return null;
  // Fields FAT uses must be zero on NTFS.
  if (
    b.readUInt16LE(0x0e) ||
    b[0x10] ||
    b.readUInt16LE(0x11) ||
    b.readUInt16LE(0x13) ||
    b.readUInt16LE(0x16) ||
    b.readUInt32LE(0x20)
  ) {
    return null;
  }
  const cpr = b.readInt8(0x40);
  let recordSize: number;
  if (cpr > 0 && isPowerOfTwo(cpr) && cpr <= 64) recordSize = cpr * clusterSize;
  else if (cpr <= -9 && cpr >= -31) recordSize = 2 ** -cpr;
  else return null;
  const sectors = b.readBigUInt64LE(0x28);
  const clusters = sectors / BigInt(spc);
  const mftLcn = b.readBigUInt64LE(0x30);
  const mirrLcn = b.readBigUInt64LE(0x38);
  if (mftLcn > clusters || mirrLcn > clusters) return null;
  const mftOffset = safeProduct(mftLcn, clusterSize);
  if (mftOffset === null) return null;
  const serial = b.readBigUInt64LE(0x48).toString(16).toUpperCase().padStart(16, '0');
  let label: string | null = null;
  if (recordSize <= MAX_RECORD) {
    const recs = await src.read(mftOffset, (MFT_RECORD_VOLUME + 1) * recordSize);
    if (recs === null || !has(recs, 0, 'FILE')) return null;
    label = volumeName(Buffer.from(recs.subarray(MFT_RECORD_VOLUME * recordSize)));
  }
  return {
    type: 'ntfs',
    uuid: serial,
    label,
    size: safeProduct(sectors, sectorSize),
    blockSize: sectorSize,
  };
}
