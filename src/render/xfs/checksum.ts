import { crc32c } from '../../util/crc32c.js';

/**
 * Stores the CRC-32C of `buf[0, length)` at `offset` (little-endian, as XFS
 * keeps every metadata checksum), computed with the field itself zeroed.
 */
export function setCrc(buf: Buffer, offset: number, length = buf.length): void {
  buf.writeUInt32LE(0, offset);
  buf.writeUInt32LE(crc32c(buf.subarray(0, length)), offset);
}
