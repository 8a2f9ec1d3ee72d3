import {
  type FsProbe,
  has,
  isPowerOfTwo,
  type ProbeSource,
  paddedString,
  safeProduct,
} from './probe-util.js';

/** Volume descriptors start at sector 16 (byte 32768) and are 2048 bytes each. */
export const ISO_VD_OFFSET = 32768;
const VD_SIZE = 2048;
/** Descriptors looked at: primary, boot record, Joliet, terminator fit in four. */
const MAX_DESCRIPTORS = 4;

/** blkid's ISO UUID: the modification (else creation) date as YYYY-MM-DD-HH-MM-SS-cc. */
function dateUuid(d: Buffer, offset: number): string | null {
  const s = d.toString('latin1', offset, offset + 16);
  if (!/^\d{16}$/u.test(s) || /^0+$/u.test(s)) return null;
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}-${s.slice(8, 10)}-${s.slice(10, 12)}-${s.slice(12, 14)}-${s.slice(14, 16)}`;
}

function isJoliet(d: Buffer): boolean {
  return d[88] === 0x25 && d[89] === 0x2f && (d[90] === 0x40 || d[90] === 0x43 || d[90] === 0x45);
}

/** Joliet identifiers are UTF-16 big-endian. */
function jolietLabel(d: Buffer): string | null {
  const id = Buffer.from(d.subarray(40, 72));
  id.swap16();
  return paddedString(id, 0, 32, 'utf16le');
}

/**
 * ISO9660: "CD001" in the volume descriptors from 32 KiB. Label is the
 * primary volume identifier, or the Joliet one when a Joliet descriptor is
 * present (as blkid prefers it); size is the volume space size.
 */
export async function probeIso(src: ProbeSource): Promise<FsProbe | null> {
  const length = Math.min(
    MAX_DESCRIPTORS * VD_SIZE,
    Math.floor((src.size - ISO_VD_OFFSET) / VD_SIZE) * VD_SIZE,
  );
  if (length < VD_SIZE) return null;
  const vds = await src.read(ISO_VD_OFFSET, length);
  if (vds === null) return null;
  let primary: Buffer | null = null;
  let joliet: Buffer | null = null;
  for (let i = 0; i < length / VD_SIZE; i++) {
    const d = vds.subarray(i * VD_SIZE, (i + 1) * VD_SIZE);
    if (!has(d, 1, 'CD001')) break;
    const type = d[0];
    if (type === 255) break;
    if (type === 1 && primary === null) primary = d;
    else if (type === 2 && joliet === null && isJoliet(d)) joliet = d;
  }
  if (primary === null) return null;
  const blockSize = primary.readUInt16LE(128);
  const blocks = primary.readUInt32LE(80);
  const label = (joliet === null ? null : jolietLabel(joliet)) ?? paddedString(primary, 40, 32);
  return {
    type: 'iso9660',
    uuid: dateUuid(primary, 830) ?? dateUuid(primary, 813),
    label,
    size: isPowerOfTwo(blockSize) ? safeProduct(blocks, blockSize) : null,
    ...(isPowerOfTwo(blockSize) ? { blockSize } : {}),
    ...(joliet === null ? {} : { version: 'Joliet' }),
  };
}
