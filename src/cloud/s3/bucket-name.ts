import { S3Error } from './s3-error.js';

/**
 * S3's general purpose bucket naming rules: 3 to 63 characters of lower-case
 * letters, digits, dots and hyphens, starting and ending with a letter or
 * digit, no two adjacent dots, not shaped like an IP address, and none of the
 * prefixes and suffixes AWS reserves.
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'must be between 3 and 63 characters long';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name))
    return 'must consist of lower-case letters, digits, dots and hyphens, and begin and end with a letter or digit';
  if (name.includes('..')) return 'must not contain two adjacent periods';
  if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name))
    return 'must not be formatted as an IP address';
  for (const prefix of ['xn--', 'sthree-', 'amzn-s3-demo-'])
    if (name.startsWith(prefix)) return `must not start with ${prefix}`;
  for (const suffix of ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'])
    if (name.endsWith(suffix)) return `must not end with ${suffix}`;
  return undefined;
}

export function checkBucketName(name: string): void {
  if (bucketNameProblem(name) !== undefined)
    throw new S3Error(400, 'InvalidBucketName', 'The specified bucket is not valid.', {
      BucketName: name.slice(0, 256),
    });
}

/** Could `name` be a bucket at all (cheap check before any lookup)? */
export function isBucketName(name: string): boolean {
  return bucketNameProblem(name) === undefined;
}
