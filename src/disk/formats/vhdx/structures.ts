import { crc32c } from '../../../util/crc32c.js';
import {
  CREATOR_BYTES,
  CREATOR_OFFSET,
  FILE_ID_SIGNATURE,
  FILE_PARAMETERS_GUID,
  HEADER_SIGNATURE,
  HEADER_SIZE,
  LOGICAL_SECTOR_SIZE_GUID,
  META_IS_REQUIRED,
  META_IS_VIRTUAL_DISK,
  METADATA_ENTRY_SIZE,
  METADATA_SIGNATURE,
  METADATA_TABLE_SIZE,
  PAGE83_GUID,
  PARAM_HAS_PARENT,
  PARAM_LEAVE_BLOCKS_ALLOCATED,
  PHYSICAL_SECTOR_SIZE_GUID,
  REGION_ENTRY_SIZE,
  REGION_REQUIRED,
  REGION_SIGNATURE,
  REGION_TABLE_SIZE,
  VIRTUAL_DISK_SIZE_GUID,
} from './constants.js';

/**
 * Encoders for the VHDX structures ferry writes (and tests patch), plus the
 * CRC-32C rule shared by headers, region tables and log entries: the CRC is
 * computed over the whole structure with its 4-byte checksum field at offset 4
 * taken as zero.
 */

const ZERO4 = Buffer.alloc(4);

/** CRC-32C of `buf` with the checksum field at `fieldOffset` read as zero. */
export function checksumOf(buf: Buffer, fieldOffset = 4): number {
  let c = crc32c(buf.subarray(0, fieldOffset));
  c = crc32c(ZERO4, c);
  return crc32c(buf.subarray(fieldOffset + 4), c);
}

/** Stores the CRC-32C of `buf` in its checksum field (offset 4). */
export function sealChecksum(buf: Buffer): Buffer {
  buf.writeUInt32LE(checksumOf(buf), 4);
  return buf;
}

/** The file identifier: signature plus a UTF-16LE creator string. */
export function encodeFileIdentifier(creator: string): Buffer {
  const buf = Buffer.alloc(64 * 1024);
  buf.write(FILE_ID_SIGNATURE, 0, 'latin1');
  const name = Buffer.from(creator, 'utf16le').subarray(0, CREATOR_BYTES - 2);
  name.copy(buf, CREATOR_OFFSET);
  return buf;
}

export interface HeaderFields {
  readonly sequence: bigint;
  readonly fileWriteGuid: Buffer;
  readonly dataWriteGuid: Buffer;
  readonly logGuid: Buffer;
  readonly logVersion: number;
  readonly version: number;
  readonly logLength: number;
  readonly logOffset: number;
}

/** A 4 KiB header with a valid checksum. */
export function encodeHeader(h: HeaderFields): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  buf.write(HEADER_SIGNATURE, 0, 'latin1');
  buf.writeBigUInt64LE(h.sequence, 8);
  h.fileWriteGuid.copy(buf, 16);
  h.dataWriteGuid.copy(buf, 32);
  h.logGuid.copy(buf, 48);
  buf.writeUInt16LE(h.logVersion, 64);
  buf.writeUInt16LE(h.version, 66);
  buf.writeUInt32LE(h.logLength, 68);
  buf.writeBigUInt64LE(BigInt(h.logOffset), 72);
  return sealChecksum(buf);
}

export interface RegionFields {
  readonly guid: Buffer;
  readonly offset: number;
  readonly length: number;
  readonly required: boolean;
}

/** A 64 KiB region table with a valid checksum. */
export function encodeRegionTable(entries: readonly RegionFields[]): Buffer {
  const buf = Buffer.alloc(REGION_TABLE_SIZE);
  buf.write(REGION_SIGNATURE, 0, 'latin1');
  buf.writeUInt32LE(entries.length, 8);
  entries.forEach((e, i) => {
    const at = 16 + i * REGION_ENTRY_SIZE;
    e.guid.copy(buf, at);
    buf.writeBigUInt64LE(BigInt(e.offset), at + 16);
    buf.writeUInt32LE(e.length, at + 24);
    buf.writeUInt32LE(e.required ? REGION_REQUIRED : 0, at + 28);
  });
  return sealChecksum(buf);
}

export interface MetadataFields {
  readonly blockSize: number;
  readonly leaveBlocksAllocated: boolean;
  readonly hasParent: boolean;
  readonly virtualSize: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly page83: Buffer;
}

/**
 * The start of a metadata region: the 64 KiB table followed by the five
 * required items, packed right after it. The rest of the region is zeros.
 */
export function encodeMetadata(m: MetadataFields): Buffer {
  const items: Array<{ id: Buffer; data: Buffer; flags: number }> = [];
  const params = Buffer.alloc(8);
  params.writeUInt32LE(m.blockSize, 0);
  params.writeUInt32LE(
    (m.leaveBlocksAllocated ? PARAM_LEAVE_BLOCKS_ALLOCATED : 0) |
      (m.hasParent ? PARAM_HAS_PARENT : 0),
    4,
  );
  items.push({ id: FILE_PARAMETERS_GUID, data: params, flags: META_IS_REQUIRED });
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(m.virtualSize), 0);
  const disk = META_IS_REQUIRED | META_IS_VIRTUAL_DISK;
  items.push({ id: VIRTUAL_DISK_SIZE_GUID, data: size, flags: disk });
  items.push({ id: PAGE83_GUID, data: Buffer.from(m.page83), flags: disk });
  const logical = Buffer.alloc(4);
  logical.writeUInt32LE(m.logicalSectorSize, 0);
  items.push({ id: LOGICAL_SECTOR_SIZE_GUID, data: logical, flags: disk });
  const physical = Buffer.alloc(4);
  physical.writeUInt32LE(m.physicalSectorSize, 0);
  items.push({ id: PHYSICAL_SECTOR_SIZE_GUID, data: physical, flags: disk });

  const dataBytes = items.reduce((s, it) => s + it.data.length, 0);
  const buf = Buffer.alloc(METADATA_TABLE_SIZE + dataBytes);
  buf.write(METADATA_SIGNATURE, 0, 'latin1');
  buf.writeUInt16LE(items.length, 10);
  let dataAt = METADATA_TABLE_SIZE;
  items.forEach((it, i) => {
    const at = 32 + i * METADATA_ENTRY_SIZE;
    it.id.copy(buf, at);
    buf.writeUInt32LE(dataAt, at + 16);
    buf.writeUInt32LE(it.data.length, at + 20);
    buf.writeUInt32LE(it.flags, at + 24);
    it.data.copy(buf, dataAt);
    dataAt += it.data.length;
  });
  return buf;
}
