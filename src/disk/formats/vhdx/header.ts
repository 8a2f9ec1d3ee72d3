import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import type { ImageWarning } from '../../types.js';
import {
  CREATOR_BYTES,
  CREATOR_OFFSET,
  FILE_ID_SIGNATURE,
  HEADER_OFFSETS,
  HEADER_SECTION_SIZE,
  HEADER_SIGNATURE,
  HEADER_SIZE,
} from './constants.js';
import { checksumOf } from './structures.js';

/** The active VHDX header. */
export interface VhdxHeader {
  /** 0 for the header at 64 KiB, 1 for the one at 128 KiB. */
  readonly index: number;
  readonly sequence: bigint;
  readonly logGuid: Buffer;
  readonly logVersion: number;
  readonly version: number;
  readonly logLength: number;
  readonly logOffset: bigint;
}

function badHeader(
  source: ByteSource,
  reason: string,
  details: Record<string, string | number> = {},
) {
  return new FerryError('FERRY_VHDX_BAD_HEADER', `Cannot open ${source.name}: ${reason}`, {
    details,
  });
}

/** Reads the file identifier and returns the creator string (diagnostic only). */
export async function readFileIdentifier(
  source: ByteSource,
  signal?: AbortSignal,
): Promise<string> {
  if (source.size < HEADER_SECTION_SIZE) {
    throw new FerryError(
      'FERRY_IMAGE_TRUNCATED',
      `Cannot open ${source.name}: a VHDX file holds at least its 1 MiB header section, this one has ${source.size} bytes`,
      { details: { size: source.size } },
    );
  }
  const id = await source.read(0, CREATOR_OFFSET + CREATOR_BYTES, signal);
  if (id.toString('latin1', 0, 8) !== FILE_ID_SIGNATURE) {
    throw badHeader(source, 'the VHDX file identifier "vhdxfile" is missing');
  }
  let end = CREATOR_OFFSET;
  while (end + 1 < id.length && (id[end] !== 0 || id[end + 1] !== 0)) end += 2;
  // Guest- or tool-controlled text: keep printable characters only.
  return id
    .toString('utf16le', CREATOR_OFFSET, end)
    .replace(/[^\p{L}\p{N}\p{P}\p{Zs}]/gu, '')
    .slice(0, 128);
}

function parseHeader(buf: Buffer, index: number): VhdxHeader | null {
  if (buf.toString('latin1', 0, 4) !== HEADER_SIGNATURE) return null;
  if (checksumOf(buf) !== buf.readUInt32LE(4)) return null;
  const version = buf.readUInt16LE(66);
  if (version !== 1) return null;
  return {
    index,
    sequence: buf.readBigUInt64LE(8),
    logGuid: Buffer.from(buf.subarray(48, 64)),
    logVersion: buf.readUInt16LE(64),
    version,
    logLength: buf.readUInt32LE(68),
    logOffset: buf.readBigUInt64LE(72),
  };
}

/**
 * Reads both headers and returns the valid one with the highest sequence
 * number. With one valid header that one is used (and a warning recorded);
 * two valid headers with the same sequence number must be identical.
 */
export async function readActiveHeader(
  source: ByteSource,
  warnings: ImageWarning[],
  signal?: AbortSignal,
): Promise<VhdxHeader> {
  const raw = await Promise.all(HEADER_OFFSETS.map((o) => source.read(o, HEADER_SIZE, signal)));
  const parsed = raw.map((b, i) => parseHeader(b, i));
  const [h1, h2] = parsed;
  if (h1 == null && h2 == null) {
    throw badHeader(source, 'neither VHDX header has a valid signature, version and CRC-32C');
  }
  if (h1 == null || h2 == null) {
    const bad = h1 == null ? 1 : 2;
    warnings.push({
      code: 'FERRY_VHDX_BAD_HEADER',
      message: `VHDX header ${bad} is invalid; the other copy is used`,
    });
    return (h1 ?? h2)!;
  }
  if (h1.sequence > h2.sequence) return h1;
  if (h2.sequence > h1.sequence) return h2;
  // Equal sequence numbers: only acceptable when the headers agree (Disk2VHD writes two copies).
  if (!raw[0]!.subarray(8, 80).equals(raw[1]!.subarray(8, 80))) {
    throw badHeader(source, 'both VHDX headers carry the same sequence number but differ', {
      sequence: h1.sequence.toString(),
    });
  }
  return h1;
}
