/**
 * How other services of the endpoint read S3 objects: VM Import opens a
 * disk image as a file, RegisterImage reads a bundle manifest. Both act for
 * the caller's account, so another account's bucket reads as absent (the
 * caller then gets its service's own "no access" error).
 */
import { open } from 'node:fs/promises';
import { isAwsError } from './aws-error.js';
import { MAX_MANIFEST_BYTES, type ManifestReader } from './ec2/index.js';
import type { ObjectFileLookup } from './import/index.js';
import type { S3ObjectFile, S3Storage } from './s3/index.js';

async function ownObject(
  s3: S3Storage,
  account: string,
  bucket: string,
  key: string,
): Promise<S3ObjectFile | undefined> {
  try {
    return await s3.objectFile(account, bucket, key);
  } catch (error) {
    if (isAwsError(error) && error.code === 'AccessDenied') return undefined;
    throw error;
  }
}

export function s3ObjectLookup(s3: S3Storage): ObjectFileLookup {
  return async (account, bucket, key) => {
    const o = await ownObject(s3, account, bucket, key);
    return o === undefined ? undefined : { path: o.path, size: o.size };
  };
}

/** Reads at most one byte past the manifest cap, so an oversized object is refused without loading it. */
export function s3ManifestReader(s3: S3Storage): ManifestReader {
  return async (account, bucket, key) => {
    const o = await ownObject(s3, account, bucket, key);
    if (o === undefined) return undefined;
    const fh = await open(o.path, 'r');
    try {
      const buf = Buffer.alloc(Math.min(o.size, MAX_MANIFEST_BYTES + 1));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  };
}
