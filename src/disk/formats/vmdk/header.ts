import { type ErrorCode, FerryError } from '../../../errors/index.js';
import { isPowerOfTwo, toSafe } from '../../binary.js';
import { LIMITS } from '../../limits.js';
import {
  COMPRESSION_DEFLATE,
  COMPRESSION_NONE,
  FLAG_COMPRESSED,
  FLAG_MARKERS,
  FLAG_VALID_NEWLINE,
  GD_AT_END,
  HEADER_SIZE,
  MAX_COMPRESSED_GRAIN_SECTORS,
  MAX_GRAIN_SECTORS,
  MAX_GTES_PER_GT,
  MIN_GRAIN_SECTORS,
  NEWLINE_CHECK,
  NEWLINE_CHECK_OFFSET,
  SECTOR,
  SPARSE_MAGIC,
} from './constants.js';

/** The fields of a hosted sparse extent header (sizes and offsets in sectors). */
export interface SparseHeader {
  readonly version: number;
  readonly flags: number;
  readonly capacity: number;
  readonly grainSize: number;
  readonly descriptorOffset: number;
  readonly descriptorSize: number;
  readonly numGTEsPerGT: number;
  /** Redundant grain directory sector, or null when it does not fit a JS number (it is never used). */
  readonly rgdOffset: number | null;
  /** Grain directory sector, or null for GD_AT_END (the footer holds the real one). */
  readonly gdOffset: number | null;
  readonly overHead: number;
  readonly uncleanShutdown: number;
  /** Whether the four newline-check bytes are intact. */
  readonly newlineIntact: boolean;
  readonly compressAlgorithm: number;
}

function fail(code: ErrorCode, name: string, reason: string, details?: Record<string, number>) {
  return new FerryError(
    code,
    `Cannot open vmdk image ${name}: ${reason}`,
    details === undefined ? {} : { details },
  );
}

function field(buf: Buffer, offset: number, what: string, code: ErrorCode): number {
  return toSafe(buf.readBigUInt64LE(offset), what, code);
}

export function hasSparseMagic(buf: Buffer): boolean {
  return buf.length >= 4 && buf.toString('latin1', 0, 4) === SPARSE_MAGIC;
}

/** Decodes the 512-byte header without judging it (see checkSparseHeader). */
export function decodeSparseHeader(buf: Buffer, name: string): SparseHeader {
  if (buf.length < HEADER_SIZE) {
    throw fail('FERRY_IMAGE_TRUNCATED', name, 'the sparse header is truncated', {
      size: buf.length,
    });
  }
  if (!hasSparseMagic(buf)) throw fail('FERRY_VMDK_BAD_HEADER', name, 'the magic is not KDMV');
  const bad = 'FERRY_VMDK_BAD_HEADER';
  const rgd = buf.readBigUInt64LE(48);
  const gd = buf.readBigUInt64LE(56);
  return {
    version: buf.readUInt32LE(4),
    flags: buf.readUInt32LE(8),
    capacity: field(buf, 12, 'vmdk capacity', 'FERRY_IMAGE_TOO_LARGE'),
    grainSize: field(buf, 20, 'vmdk grainSize', bad),
    descriptorOffset: field(buf, 28, 'vmdk descriptorOffset', bad),
    descriptorSize: field(buf, 36, 'vmdk descriptorSize', bad),
    numGTEsPerGT: buf.readUInt32LE(44),
    rgdOffset: rgd > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(rgd),
    gdOffset: gd === GD_AT_END ? null : field(buf, 56, 'vmdk gdOffset', bad),
    overHead: field(buf, 64, 'vmdk overHead', bad),
    uncleanShutdown: buf[72]!,
    newlineIntact: buf
      .subarray(NEWLINE_CHECK_OFFSET, NEWLINE_CHECK_OFFSET + 4)
      .equals(NEWLINE_CHECK),
    compressAlgorithm: buf.readUInt16LE(77),
  };
}

export function isCompressed(h: SparseHeader): boolean {
  return h.compressAlgorithm === COMPRESSION_DEFLATE;
}

/** Grain directory entries the header implies (each covers numGTEsPerGT grains). */
export function gdEntries(h: SparseHeader): number {
  return Math.ceil(h.capacity / (h.numGTEsPerGT * h.grainSize));
}

/**
 * Validates a decoded header against the file it came from: version, newline
 * check, compression, grain size, table sizes, descriptor placement and the
 * grain directory's size and position. Throws a coded FerryError.
 */
export function checkSparseHeader(h: SparseHeader, fileSize: number, name: string): void {
  const bad = 'FERRY_VMDK_BAD_HEADER';
  if (h.version < 1 || h.version > 3) {
    throw fail(bad, name, `version ${h.version} is not 1, 2 or 3`, { version: h.version });
  }
  if ((h.flags & FLAG_VALID_NEWLINE) !== 0 && !h.newlineIntact) {
    throw fail(
      bad,
      name,
      'the newline check bytes are damaged (the file went through a text-mode transfer)',
    );
  }
  if (h.compressAlgorithm !== COMPRESSION_NONE && h.compressAlgorithm !== COMPRESSION_DEFLATE) {
    throw fail(bad, name, `compression algorithm ${h.compressAlgorithm} is unknown`, {
      compressAlgorithm: h.compressAlgorithm,
    });
  }
  if ((h.flags & FLAG_COMPRESSED) !== 0 && !isCompressed(h)) {
    throw fail(bad, name, 'grains are flagged compressed but the compression algorithm is 0');
  }
  if ((h.flags & FLAG_MARKERS) !== 0 && !isCompressed(h)) {
    throw fail(bad, name, 'markers are flagged but grains are not compressed');
  }
  if (isCompressed(h) && (h.flags & FLAG_MARKERS) === 0) {
    // Readers disagree on this layout (qemu: bare zlib; open-vmdk: a u32 size first).
    throw fail(
      'FERRY_FORMAT_UNSUPPORTED',
      name,
      'compressed grains without grain markers are not supported',
    );
  }
  if (
    !isPowerOfTwo(h.grainSize) ||
    h.grainSize < MIN_GRAIN_SECTORS ||
    h.grainSize > MAX_GRAIN_SECTORS
  ) {
    throw fail(bad, name, `grain size ${h.grainSize} sectors is not a power of two in [8, 2^21]`, {
      grainSize: h.grainSize,
    });
  }
  if (isCompressed(h) && h.grainSize > MAX_COMPRESSED_GRAIN_SECTORS) {
    throw fail(
      'FERRY_IMAGE_LIMIT',
      name,
      `compressed grains of ${h.grainSize} sectors exceed the 2 MiB cap`,
      {
        grainSize: h.grainSize,
      },
    );
  }
  if (h.numGTEsPerGT < 1 || h.numGTEsPerGT > MAX_GTES_PER_GT) {
    throw fail(bad, name, `numGTEsPerGT ${h.numGTEsPerGT} is not in [1, 512]`, {
      numGTEsPerGT: h.numGTEsPerGT,
    });
  }
  if (h.capacity === 0 && h.descriptorOffset !== 0) {
    // qemu parses such a file as a descriptor file (CVE-2022-47951); refuse it.
    throw fail(bad, name, 'capacity is 0 with a descriptor offset (a disguised descriptor file)');
  }
  if (h.capacity > LIMITS.maxVirtualSize / SECTOR) {
    throw fail('FERRY_IMAGE_TOO_LARGE', name, `capacity ${h.capacity} sectors is over 64 TiB`, {
      capacity: h.capacity,
    });
  }
  if (h.descriptorOffset === 0) {
    throw fail(
      'FERRY_VMDK_UNSUPPORTED_TYPE',
      name,
      'the sparse extent has no embedded descriptor (it belongs to a multi-extent disk)',
    );
  }
  if (h.descriptorOffset !== 1) {
    throw fail(bad, name, `the descriptor is at sector ${h.descriptorOffset}, not 1`, {
      descriptorOffset: h.descriptorOffset,
    });
  }
  if (h.descriptorSize < 1) throw fail(bad, name, 'the embedded descriptor size is 0');
  if (h.descriptorSize * SECTOR > LIMITS.maxVmdkDescriptorBytes) {
    throw fail('FERRY_VMDK_BAD_DESCRIPTOR', name, 'the embedded descriptor is over 1 MiB', {
      descriptorSize: h.descriptorSize,
    });
  }
  if ((h.descriptorOffset + h.descriptorSize) * SECTOR > fileSize) {
    throw fail('FERRY_IMAGE_TRUNCATED', name, 'the embedded descriptor lies past the end of file');
  }
  if (h.overHead > fileSize / SECTOR) {
    throw fail(
      'FERRY_IMAGE_TRUNCATED',
      name,
      `the file is shorter than its ${h.overHead}-sector overhead`,
      {
        overHead: h.overHead,
        fileSize,
      },
    );
  }
  const entries = gdEntries(h);
  if (entries > LIMITS.maxVmdkGdEntries) {
    throw fail(
      'FERRY_IMAGE_LIMIT',
      name,
      `the grain directory has ${entries} entries (cap 32 Mi)`,
      {
        entries,
      },
    );
  }
  if (h.gdOffset !== null) {
    if (h.gdOffset < 1) throw fail(bad, name, 'the grain directory offset is 0');
    if (h.gdOffset * SECTOR + entries * 4 > fileSize) {
      throw fail('FERRY_IMAGE_TRUNCATED', name, 'the grain directory lies past the end of file', {
        gdOffset: h.gdOffset,
        entries,
        fileSize,
      });
    }
  }
}

/** Fields a writer chooses; the rest are fixed by the stream-optimized layout. */
export interface HeaderFields {
  readonly version: number;
  readonly flags: number;
  readonly capacity: number;
  readonly grainSize: number;
  readonly descriptorOffset: number;
  readonly descriptorSize: number;
  readonly numGTEsPerGT: number;
  readonly rgdOffset: number;
  /** Grain directory sector, or null to write GD_AT_END. */
  readonly gdOffset: number | null;
  readonly overHead: number;
  readonly compressAlgorithm: number;
}

/** Encodes a 512-byte sparse header. */
export function encodeSparseHeader(f: HeaderFields): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.write(SPARSE_MAGIC, 0, 'latin1');
  b.writeUInt32LE(f.version, 4);
  b.writeUInt32LE(f.flags, 8);
  b.writeBigUInt64LE(BigInt(f.capacity), 12);
  b.writeBigUInt64LE(BigInt(f.grainSize), 20);
  b.writeBigUInt64LE(BigInt(f.descriptorOffset), 28);
  b.writeBigUInt64LE(BigInt(f.descriptorSize), 36);
  b.writeUInt32LE(f.numGTEsPerGT, 44);
  b.writeBigUInt64LE(BigInt(f.rgdOffset), 48);
  b.writeBigUInt64LE(f.gdOffset === null ? GD_AT_END : BigInt(f.gdOffset), 56);
  b.writeBigUInt64LE(BigInt(f.overHead), 64);
  // 72: uncleanShutdown 0.
  NEWLINE_CHECK.copy(b, NEWLINE_CHECK_OFFSET);
  b.writeUInt16LE(f.compressAlgorithm, 77);
  return b;
}
