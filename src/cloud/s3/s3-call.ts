/**
 * One S3 request as the operations see it: the storage, the authenticated
 * request, the bucket and key of its path, and the checks every operation
 * on a bucket makes (owner, region, key length).
 */
import { createHash } from 'node:crypto';
import type { CloudRequest } from '../service.js';
import { MAX_KEY_BYTES } from './limits.js';
import { invalidArgument, S3Error } from './s3-error.js';
import { el } from './s3-xml.js';
import type { Bucket, S3Storage } from './storage.js';

export interface S3Call {
  readonly storage: S3Storage;
  readonly req: CloudRequest;
  readonly bucket: string;
  /** The key, '' for operations on the bucket itself. */
  readonly key: string;
}

/** The caller's bucket, loaded, in the region the request was signed for. */
export async function ownBucket(call: S3Call): Promise<Bucket> {
  const bucket = await call.storage.bucket(call.req.account, call.bucket);
  checkRegion(call, bucket.record.region);
  return bucket;
}

/** S3 answers a request signed for another region than the bucket's with the right region. */
export function checkRegion(call: S3Call, region: string): void {
  if (region !== call.req.region)
    throw new S3Error(
      400,
      'AuthorizationHeaderMalformed',
      `The authorization header is malformed; the region '${call.req.region}' is wrong; expecting '${region}'`,
      { Region: region },
      { 'x-amz-bucket-region': region },
    );
}

export function checkKey(key: string): void {
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES)
    throw new S3Error(400, 'KeyTooLongError', 'Your key is too long', {
      Size: String(Buffer.byteLength(key, 'utf8')),
      MaxSizeAllowed: String(MAX_KEY_BYTES),
    });
}

/** The canonical user id S3 shows for an account (64 hex digits). */
export function canonicalId(account: string): string {
  return createHash('sha256').update(`ferry-s3-owner:${account}`).digest('hex');
}

export function ownerXml(account: string) {
  return el('Owner', el('ID', canonicalId(account)), el('DisplayName', account));
}

/** A whole-number query parameter within bounds (InvalidArgument otherwise). */
export function intParam(
  call: S3Call,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = call.req.query.get(name);
  if (v === null) return fallback;
  if (!/^-?\d{1,10}$/.test(v) || Number(v) < min)
    throw invalidArgument(`Provided ${name} not an integer or within integer range`, name, v);
  return Math.min(Number(v), max);
}

/** The encoding-type parameter: keys in answers are URL-encoded when it is "url". */
export function keyEncoder(call: S3Call): { encode: (s: string) => string; type?: string } {
  const type = call.req.query.get('encoding-type');
  if (type === null) return { encode: (s) => s };
  if (type !== 'url')
    throw invalidArgument('Invalid Encoding Method specified in Request', 'encoding-type', type);
  return {
    encode: (s) => encodeURIComponent(s).replace(/%2F/g, '/').replace(/%20/g, '+'),
    type: 'url',
  };
}
