/**
 * VHDX (MS-VHDX v1) layout constants. All fields are little-endian; GUIDs are
 * stored in Microsoft order (data1 u32 LE, data2 u16 LE, data3 u16 LE, 8 bytes).
 */

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** The header section: file identifier, two headers, two region tables. */
export const HEADER_SECTION_SIZE = MiB;
export const FILE_ID_SIGNATURE = 'vhdxfile';
/** UTF-16LE creator string after the signature (diagnostic only). */
export const CREATOR_OFFSET = 8;
export const CREATOR_BYTES = 512;

export const HEADER_OFFSETS = [64 * KiB, 128 * KiB] as const;
/** A header's CRC covers its first 4 KiB. */
export const HEADER_SIZE = 4 * KiB;
export const HEADER_SIGNATURE = 'head';

export const REGION_TABLE_OFFSETS = [192 * KiB, 256 * KiB] as const;
/** A region table's CRC covers 64 KiB. */
export const REGION_TABLE_SIZE = 64 * KiB;
export const REGION_SIGNATURE = 'regi';
export const REGION_ENTRY_SIZE = 32;
export const REGION_REQUIRED = 0x1;

export const METADATA_SIGNATURE = 'metadata';
/** The metadata table (header + entries) occupies the first 64 KiB of the region. */
export const METADATA_TABLE_SIZE = 64 * KiB;
export const METADATA_ENTRY_SIZE = 32;
export const META_IS_USER = 0x1;
export const META_IS_VIRTUAL_DISK = 0x2;
export const META_IS_REQUIRED = 0x4;

export const PARAM_LEAVE_BLOCKS_ALLOCATED = 0x1;
export const PARAM_HAS_PARENT = 0x2;

export const MIN_BLOCK_SIZE = MiB;
export const MAX_BLOCK_SIZE = 256 * MiB;

/** Sectors a sector-bitmap block describes (2^23): fixes the chunk ratio. */
export const SECTORS_PER_BITMAP = 2 ** 23;

/** Payload BAT entry states (low 3 bits). */
export const PAYLOAD_NOT_PRESENT = 0;
export const PAYLOAD_UNDEFINED = 1;
export const PAYLOAD_ZERO = 2;
export const PAYLOAD_UNMAPPED = 3;
/** UNMAPPED as numbered by the v0.95 draft; qemu still reads it as unmapped. */
export const PAYLOAD_UNMAPPED_V095 = 5;
export const PAYLOAD_FULLY_PRESENT = 6;
export const PAYLOAD_PARTIALLY_PRESENT = 7;

/** Log entry header ("loge"), 4 KiB aligned in the log. */
export const LOG_ENTRY_SIGNATURE = 'loge';
export const LOG_SECTOR_SIZE = 4 * KiB;

/** Parses "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" into its 16 on-disk bytes. */
export function guid(text: string): Buffer {
  const hex = text.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  const out = Buffer.alloc(16);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  b.copy(out, 8, 8, 16);
  return out;
}

/** Formats 16 on-disk GUID bytes as text (for messages). */
export function guidText(bytes: Buffer): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return [
    h(bytes.readUInt32LE(0), 8),
    h(bytes.readUInt16LE(4), 4),
    h(bytes.readUInt16LE(6), 4),
    bytes.toString('hex', 8, 10),
    bytes.toString('hex', 10, 16),
  ]
    .join('-')
    .toUpperCase();
}

export const BAT_REGION_GUID = guid('2DC27766-F623-4200-9D64-115E9BFD4A08');
export const METADATA_REGION_GUID = guid('8B7CA206-4790-4B9A-B8FE-575F050F886E');

export const FILE_PARAMETERS_GUID = guid('CAA16737-FA36-4D43-B3B6-33F0AA44E76B');
export const VIRTUAL_DISK_SIZE_GUID = guid('2FA54224-CD1B-4876-B211-5DBED83BF4B8');
export const PAGE83_GUID = guid('BECA12AB-B2E6-4523-93EF-C309E000C746');
export const LOGICAL_SECTOR_SIZE_GUID = guid('8141BF1D-A96F-4709-BA47-F233A8FAAB5F');
export const PHYSICAL_SECTOR_SIZE_GUID = guid('CDA348C7-445D-4471-9CC9-E9885251C556');
export const PARENT_LOCATOR_GUID = guid('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C');

/** Chunk ratio: payload blocks per sector-bitmap block. */
export function chunkRatio(logicalSectorSize: number, blockSize: number): number {
  return (SECTORS_PER_BITMAP * logicalSectorSize) / blockSize;
}

/** BAT entries of a non-differencing disk: payload entries plus interleaved bitmap entries. */
export function batEntryCount(payloadBlocks: number, ratio: number): number {
  return payloadBlocks === 0 ? 0 : payloadBlocks + Math.floor((payloadBlocks - 1) / ratio);
}

/** Index in the BAT of payload block `block`. */
export function batIndex(block: number, ratio: number): number {
  return block + Math.floor(block / ratio);
}
