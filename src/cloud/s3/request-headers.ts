/**
 * What an upload's headers ask for: user metadata, the representation
 * headers kept with an object, and the digests to verify (Content-MD5, one
 * x-amz-checksum-* header or trailer).
 */
import type { CloudPayload } from '../payload.js';
import type { CloudRequest } from '../service.js';
import {
  type BodyDigests,
  CHECKSUM_ALGORITHMS,
  type ChecksumAlgorithm,
  checkChecksumValue,
  checksumAlgorithm,
} from './checksums.js';
import { MAX_USER_METADATA_BYTES } from './limits.js';
import { STORED_HEADERS } from './records.js';
import { badDigest, invalidRequest, S3Error } from './s3-error.js';

export function header(req: CloudRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** x-amz-meta-* headers (names lower case, without the prefix), capped at 2 KiB. */
export function userMetadata(req: CloudRequest): Record<string, string> {
  const meta: Record<string, string> = {};
  let size = 0;
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const v = Array.isArray(value) ? value.join(',') : value;
    const short = name.slice('x-amz-meta-'.length);
    size += Buffer.byteLength(short) + Buffer.byteLength(v);
    meta[short] = v;
  }
  if (size > MAX_USER_METADATA_BYTES)
    throw new S3Error(
      400,
      'MetadataTooLarge',
      'Your metadata headers exceed the maximum allowed metadata size',
      { Size: String(size), MaxSizeAllowed: String(MAX_USER_METADATA_BYTES) },
    );
  return meta;
}

/** Content-Type and the other representation headers S3 keeps (aws-chunked is transport, not kept). */
export function storedHeaders(req: CloudRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    let v = header(req, name);
    if (name === 'content-encoding' && v !== undefined)
      v = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '' && s !== 'aws-chunked')
        .join(',');
    if (v !== undefined && v !== '') out[name] = v.slice(0, 1024);
  }
  out['content-type'] ??= 'binary/octet-stream';
  return out;
}

export interface DigestExpectations {
  readonly md5?: Buffer;
  /** The one flexible checksum to verify (value from a header now, or from the trailer later). */
  readonly checksum?: { readonly algorithm: ChecksumAlgorithm; readonly value?: string };
  /** The algorithms to compute. */
  readonly algorithms: ChecksumAlgorithm[];
}

export function digestExpectations(
  req: CloudRequest,
  payload: CloudPayload | undefined,
  extra?: ChecksumAlgorithm,
): DigestExpectations {
  let md5: Buffer | undefined;
  const md5Text = header(req, 'content-md5');
  if (md5Text !== undefined) {
    md5 = Buffer.from(md5Text, 'base64');
    if (md5.length !== 16 || md5.toString('base64') !== md5Text.trim())
      throw new S3Error(400, 'InvalidDigest', 'The Content-MD5 you specified was not valid.');
  }
  const sent: Array<{ algorithm: ChecksumAlgorithm; value?: string }> = [];
  for (const name of Object.keys(req.headers)) {
    if (!name.startsWith('x-amz-checksum-')) continue;
    const suffix = name.slice('x-amz-checksum-'.length);
    if (suffix === 'algorithm' || suffix === 'type' || suffix === 'mode') continue;
    const algorithm = checksumAlgorithm(suffix, name);
    const value = header(req, name)!.trim();
    checkChecksumValue(algorithm, value);
    sent.push({ algorithm, value });
  }
  const trailer = payload?.trailerName;
  if (trailer !== undefined) {
    if (!trailer.startsWith('x-amz-checksum-'))
      throw invalidRequest(`The value specified in the x-amz-trailer header is not supported`);
    sent.push({ algorithm: checksumAlgorithm(trailer.slice('x-amz-checksum-'.length), trailer) });
  }
  if (sent.length > 1)
    throw invalidRequest(
      'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.',
    );
  const algorithms = sent.map((s) => s.algorithm);
  const declared = header(req, 'x-amz-sdk-checksum-algorithm');
  if (declared !== undefined) {
    const a = checksumAlgorithm(declared, 'x-amz-sdk-checksum-algorithm');
    if (sent[0] !== undefined && sent[0].algorithm !== a)
      throw invalidRequest('Value for x-amz-sdk-checksum-algorithm header is invalid.');
    algorithms.push(a);
  }
  if (extra !== undefined) algorithms.push(extra);
  return {
    ...(md5 === undefined ? {} : { md5 }),
    ...(sent[0] === undefined ? {} : { checksum: sent[0] }),
    algorithms,
  };
}

const NAMES: Record<ChecksumAlgorithm, string> = {
  crc32: 'CRC32',
  crc32c: 'CRC32C',
  sha1: 'SHA1',
  sha256: 'SHA256',
};

/** Checks what was received against what the request promised (BadDigest). */
export function verifyDigests(
  expect: DigestExpectations,
  digests: BodyDigests,
  payload: CloudPayload | undefined,
): void {
  if (expect.md5 !== undefined && !expect.md5.equals(digests.md5))
    throw new S3Error(
      400,
      'BadDigest',
      'The Content-MD5 you specified did not match what we received.',
    );
  const c = expect.checksum;
  if (c === undefined) return;
  let value = c.value;
  if (value === undefined) {
    value = payload?.trailers.get(`x-amz-checksum-${c.algorithm}`);
    if (value === undefined)
      throw invalidRequest(`x-amz-checksum-${c.algorithm} trailer was announced but not sent.`);
    checkChecksumValue(c.algorithm, value);
  }
  if (digests.checksums[c.algorithm] !== value) throw badDigest(NAMES[c.algorithm]);
}

export function checksumHeaders(
  checksums: Partial<Record<ChecksumAlgorithm, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of CHECKSUM_ALGORITHMS) {
    const v = checksums[a];
    if (v !== undefined) out[`x-amz-checksum-${a}`] = v;
  }
  return out;
}
