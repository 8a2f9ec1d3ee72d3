import { FerryError } from '../../../errors/index.js';
import { isPowerOfTwo, u64be } from '../../binary.js';
import type { ByteSource } from '../../byte-source.js';
import { LIMITS } from '../../limits.js';
import {
  FOOTER_SIZE,
  H,
  HEADER_COOKIE,
  HEADER_SIZE,
  HEADER_VERSION,
  MIN_BLOCK_SIZE,
} from './constants.js';
import { sealChecksum, vhdChecksum } from './footer.js';

/** A checked dynamic disk header. */
export interface DynamicHeader {
  /** File offset of the header itself. */
  readonly offset: number;
  readonly tableOffset: number;
  readonly maxTableEntries: number;
  readonly blockSize: number;
}

export function badHeader(
  name: string,
  reason: string,
  details: Record<string, string | number> = {},
): FerryError {
  return new FerryError('FERRY_VHD_BAD_HEADER', `Cannot open ${name}: ${reason}`, { details });
}

function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  return a < b + blen && b < a + alen;
}

/**
 * Reads and checks the dynamic header at `offset`: cookie, checksum, version,
 * block size, and a BAT that fits the cap, the file and the virtual size and
 * overlaps neither the header nor the footers.
 */
export async function readDynamicHeader(
  source: ByteSource,
  offset: number,
  virtualSize: number,
  signal?: AbortSignal,
): Promise<DynamicHeader> {
  const name = source.name;
  const metaEnd = source.size - FOOTER_SIZE;
  if (offset < FOOTER_SIZE || offset + HEADER_SIZE > metaEnd) {
    throw badHeader(
      name,
      `the dynamic header offset ${offset} does not lie between the two footers (file size ${source.size})`,
      { offset, size: source.size },
    );
  }
  const buf = await source.read(offset, HEADER_SIZE, signal);
  if (buf.toString('latin1', H.cookie, H.cookie + 8) !== HEADER_COOKIE) {
    throw badHeader(name, `no dynamic header (cookie "cxsparse") at offset ${offset}`, { offset });
  }
  const stored = buf.readUInt32BE(H.checksum);
  const computed = vhdChecksum(buf, H.checksum);
  if (stored !== computed) {
    throw new FerryError(
      'FERRY_VHD_BAD_CHECKSUM',
      `Cannot open ${name}: the VHD dynamic header checksum is 0x${stored.toString(16)}, expected 0x${computed.toString(16)}`,
      { details: { stored, computed } },
    );
  }
  const version = buf.readUInt32BE(H.version);
  if (version !== HEADER_VERSION) {
    throw badHeader(name, `the dynamic header has version 0x${version.toString(16)}`, { version });
  }
  const blockSize = buf.readUInt32BE(H.blockSize);
  if (!isPowerOfTwo(blockSize) || blockSize < MIN_BLOCK_SIZE) {
    throw badHeader(
      name,
      `the block size ${blockSize} is not a power of two of at least ${MIN_BLOCK_SIZE} bytes`,
      { blockSize },
    );
  }
  const entries = buf.readUInt32BE(H.maxTableEntries);
  if (Math.floor(virtualSize / blockSize) > 0xffffffff) {
    throw badHeader(name, 'the disk has more than 2^32 blocks', { virtualSize, blockSize });
  }
  if (entries * blockSize < virtualSize) {
    throw badHeader(
      name,
      `the BAT's ${entries} entries of ${blockSize} bytes cover less than the ${virtualSize}-byte disk`,
      { entries, blockSize, virtualSize },
    );
  }
  const tableBytes = entries * 4;
  if (tableBytes > LIMITS.maxBlockTableBytes) {
    throw new FerryError(
      'FERRY_IMAGE_LIMIT',
      `Cannot open ${name}: its BAT needs ${tableBytes} bytes, more than the ${LIMITS.maxBlockTableBytes}-byte cap`,
      { details: { entries, cap: LIMITS.maxBlockTableBytes } },
    );
  }
  const tableOffset = u64be(buf, H.tableOffset, 'VHD BAT offset', 'FERRY_VHD_BAD_HEADER');
  if (tableOffset < FOOTER_SIZE || tableOffset + tableBytes > metaEnd) {
    throw badHeader(
      name,
      `the BAT (${tableBytes} bytes at ${tableOffset}) does not lie between the two footers (file size ${source.size})`,
      { tableOffset, tableBytes, size: source.size },
    );
  }
  if (overlaps(tableOffset, tableBytes, offset, HEADER_SIZE)) {
    throw badHeader(name, `the BAT at ${tableOffset} overlaps the dynamic header at ${offset}`, {
      tableOffset,
      offset,
    });
  }
  return { offset, tableOffset, maxTableEntries: entries, blockSize };
}

/** Encodes a dynamic header (no parent) with its checksum. */
export function encodeDynamicHeader(h: {
  tableOffset: number;
  maxTableEntries: number;
  blockSize: number;
}): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  buf.write(HEADER_COOKIE, H.cookie, 'latin1');
  buf.fill(0xff, H.dataOffset, H.dataOffset + 8);
  buf.writeBigUInt64BE(BigInt(h.tableOffset), H.tableOffset);
  buf.writeUInt32BE(HEADER_VERSION, H.version);
  buf.writeUInt32BE(h.maxTableEntries, H.maxTableEntries);
  buf.writeUInt32BE(h.blockSize, H.blockSize);
  sealChecksum(buf, H.checksum);
  return buf;
}
