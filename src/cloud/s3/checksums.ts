/**
 * The digests S3 keeps or checks for a body: the MD5 behind the ETag
 * (and Content-MD5), and the flexible checksums (x-amz-checksum-crc32,
 * -crc32c, -sha1, -sha256), all computed in one pass as the body streams.
 */
import { createHash, type Hash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { crc32 as crc32Js } from '../../util/crc32.js';
import { crc32c } from '../../util/crc32c.js';
import { invalidRequest, notImplemented } from './s3-error.js';

export type ChecksumAlgorithm = 'crc32' | 'crc32c' | 'sha1' | 'sha256';
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = [
  'crc32',
  'crc32c',
  'sha1',
  'sha256',
];
/** The response element of each algorithm (ChecksumCRC32…). */
export const CHECKSUM_ELEMENT: Record<ChecksumAlgorithm, string> = {
  crc32: 'ChecksumCRC32',
  crc32c: 'ChecksumCRC32C',
  sha1: 'ChecksumSHA1',
  sha256: 'ChecksumSHA256',
};
const RAW_BYTES: Record<ChecksumAlgorithm, number> = { crc32: 4, crc32c: 4, sha1: 20, sha256: 32 };

// Node 20.15 and later have a native CRC-32; earlier ones use the table version.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
const crc32 = nativeCrc32 ?? crc32Js;

/** Parses an algorithm name as the headers spell it (CRC32, crc32c…); others are refused. */
export function checksumAlgorithm(name: string, where: string): ChecksumAlgorithm {
  const lower = name.toLowerCase();
  if ((CHECKSUM_ALGORITHMS as readonly string[]).includes(lower)) return lower as ChecksumAlgorithm;
  if (lower === 'crc64nvme') throw notImplemented(where);
  throw invalidRequest(`Value for ${where} header is invalid.`);
}

/** Is `value` a base64 checksum of the right length for `algorithm`? */
export function checkChecksumValue(algorithm: ChecksumAlgorithm, value: string): void {
  const raw = Buffer.from(value, 'base64');
  if (raw.length !== RAW_BYTES[algorithm] || raw.toString('base64') !== value)
    throw invalidRequest(`Value for x-amz-checksum-${algorithm} header is invalid.`);
}

class Crc {
  private value = 0;
  private readonly fn: (data: Uint8Array, previous: number) => number;
  constructor(fn: (data: Uint8Array, previous: number) => number) {
    this.fn = fn;
  }
  update(data: Uint8Array): void {
    this.value = this.fn(data, this.value);
  }
  digest(): Buffer {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.value >>> 0);
    return out;
  }
}

interface Digest {
  update(data: Uint8Array): void;
  digest(): Buffer;
}

function newDigest(algorithm: ChecksumAlgorithm): Digest {
  switch (algorithm) {
    case 'crc32':
      return new Crc(crc32);
    case 'crc32c':
      return new Crc(crc32c);
    case 'sha1':
    case 'sha256':
      return createHash(algorithm) as Hash;
  }
}

/** The raw digest of `data` (composite checksums hash the parts' raw checksums). */
export function digestOf(algorithm: ChecksumAlgorithm, data: Uint8Array): Buffer {
  const d = newDigest(algorithm);
  d.update(data);
  return d.digest();
}

export interface BodyDigests {
  readonly size: number;
  readonly md5: Buffer;
  /** base64 value of each algorithm asked for. */
  readonly checksums: Partial<Record<ChecksumAlgorithm, string>>;
}

/** Accumulates MD5 and the asked-for checksums over a body. */
export class BodyHasher {
  private readonly md5 = createHash('md5');
  private readonly others: Array<[ChecksumAlgorithm, Digest]>;
  private size = 0;

  constructor(algorithms: Iterable<ChecksumAlgorithm>) {
    this.others = [...new Set(algorithms)].map((a) => [a, newDigest(a)]);
  }

  update(data: Uint8Array): void {
    this.size += data.length;
    this.md5.update(data);
    for (const [, d] of this.others) d.update(data);
  }

  finish(): BodyDigests {
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const [a, d] of this.others) checksums[a] = d.digest().toString('base64');
    return { size: this.size, md5: this.md5.digest(), checksums };
  }
}
