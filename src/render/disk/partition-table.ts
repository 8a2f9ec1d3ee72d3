import { crc32 } from '../../util/crc32.js';

export const SECTOR = 512;

/** GPT partition type GUIDs ferry writes. */
export const GPT_TYPES = {
  biosBoot: '21686148-6449-6e6f-744e-656564454649',
  esp: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
  /** The x86-64 root of the Discoverable Partitions Specification. */
  linuxRootX86_64: '4f68bce3-e8cd-4db1-96e7-fbcaf984b709',
} as const;

export interface PartitionSpec {
  readonly name: string;
  /** GPT type GUID (text form), or for MBR tables the one-byte type. */
  readonly type: string;
  readonly mbrType: number;
  readonly guid: Buffer;
  readonly firstLba: number;
  /** Inclusive. */
  readonly lastLba: number;
  readonly bootable?: boolean;
}

/** A GUID in its text form as GPT stores it (first three fields little-endian). */
export function guidBytes(text: string): Buffer {
  const h = text.replaceAll('-', '');
  const b = Buffer.from(h, 'hex');
  const out = Buffer.from(b);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  return out;
}

/** A protective or real MBR: 446 bytes of boot code (zeros or given), four entries, the signature. */
export function encodeMbr(
  code: Buffer | null,
  entries: readonly (readonly [number, number, number, boolean])[],
): Buffer {
  const b = Buffer.alloc(SECTOR);
  code?.copy(b, 0, 0, 440);
  entries.forEach(([type, first, count, bootable], i) => {
    const at = 446 + i * 16;
    b.writeUInt8(bootable ? 0x80 : 0, at);
    // CHS fields: the "use LBA" values every modern tool writes.
    b.writeUIntLE(0xfeffff, at + 1, 3);
    b.writeUInt8(type, at + 4);
    b.writeUIntLE(0xfeffff, at + 5, 3);
    b.writeUInt32LE(first, at + 8);
    b.writeUInt32LE(Math.min(count, 0xffffffff), at + 12);
  });
  if (entries.length > 0 && entries[0]![0] === 0xee) {
    b.writeUIntLE(0x000200, 446 + 1, 3);
  }
  b.writeUInt16LE(0xaa55, 510);
  return b;
}

const ENTRIES = 128;
const ENTRY_SIZE = 128;
/** Sectors of the entry array: 128 x 128 bytes. */
export const GPT_ENTRY_SECTORS = (ENTRIES * ENTRY_SIZE) / SECTOR;

function gptHeader(
  current: number,
  backup: number,
  entriesLba: number,
  totalSectors: number,
  diskGuid: Buffer,
  entriesCrc: number,
): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write('EFI PART', 0, 'latin1');
  h.writeUInt32LE(0x00010000, 8);
  h.writeUInt32LE(92, 12);
  h.writeBigUInt64LE(BigInt(current), 24);
  h.writeBigUInt64LE(BigInt(backup), 32);
  h.writeBigUInt64LE(BigInt(2 + GPT_ENTRY_SECTORS), 40);
  h.writeBigUInt64LE(BigInt(totalSectors - 2 - GPT_ENTRY_SECTORS), 48);
  diskGuid.copy(h, 56);
  h.writeBigUInt64LE(BigInt(entriesLba), 72);
  h.writeUInt32LE(ENTRIES, 80);
  h.writeUInt32LE(ENTRY_SIZE, 84);
  h.writeUInt32LE(entriesCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
  return h;
}

/**
 * A GPT disk's tables: the primary (protective MBR, header, entries: LBA
 * 0-33) and the backup (entries, header: the last 33 sectors).
 */
export function encodeGpt(
  totalSectors: number,
  diskGuid: Buffer,
  parts: readonly PartitionSpec[],
  mbrCode: Buffer | null,
): { primary: Buffer; backup: Buffer } {
  const entries = Buffer.alloc(ENTRIES * ENTRY_SIZE);
  parts.forEach((p, i) => {
    const at = i * ENTRY_SIZE;
    guidBytes(p.type).copy(entries, at);
    p.guid.copy(entries, at + 16);
    entries.writeBigUInt64LE(BigInt(p.firstLba), at + 32);
    entries.writeBigUInt64LE(BigInt(p.lastLba), at + 40);
    entries.writeBigUInt64LE(p.bootable === true ? 4n : 0n, at + 48);
    entries.write(p.name.slice(0, 36), at + 56, 'utf16le');
  });
  const crc = crc32(entries);
  const last = totalSectors - 1;
  const primary = Buffer.concat([
    encodeMbr(mbrCode, [[0xee, 1, totalSectors - 1, false]]),
    gptHeader(1, last, 2, totalSectors, diskGuid, crc),
    entries,
  ]);
  const backup = Buffer.concat([
    entries,
    gptHeader(last, 1, last - GPT_ENTRY_SECTORS, totalSectors, diskGuid, crc),
  ]);
  return { primary, backup };
}
