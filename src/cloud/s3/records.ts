/**
 * What S3 keeps on disk, one small JSON file each: a bucket, an object, a
 * multipart upload, a part. Files are read back defensively: one that does
 * not have the expected shape is treated as absent (it can only come from
 * outside tampering, since every write is atomic).
 */
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from './checksums.js';

export interface BucketRecord {
  readonly name: string;
  /** Names the bucket's data directory (a recreated bucket gets a new one). */
  readonly id: string;
  readonly account: string;
  readonly region: string;
  readonly created: number;
}

/** The representation headers S3 stores with an object and returns on GET/HEAD. */
export const STORED_HEADERS = [
  'content-type',
  'content-encoding',
  'content-disposition',
  'content-language',
  'cache-control',
  'expires',
] as const;

export interface ObjectChecksum {
  readonly algorithm: ChecksumAlgorithm;
  /** base64; a multipart object's is "…-N" (a checksum of the parts' checksums). */
  readonly value: string;
  readonly type: 'FULL_OBJECT' | 'COMPOSITE';
}

export interface ObjectRecord {
  readonly key: string;
  /** The file under blobs/ that holds the bytes. */
  readonly blob: string;
  readonly size: number;
  /** Quoted, as sent in the ETag header. */
  readonly etag: string;
  readonly lastModified: number;
  readonly headers: Readonly<Record<string, string>>;
  /** x-amz-meta-* without the prefix, names lower case. */
  readonly meta: Readonly<Record<string, string>>;
  readonly checksum?: ObjectChecksum;
  /** Part count of a multipart object. */
  readonly parts?: number;
}

export interface UploadRecord {
  readonly id: string;
  readonly key: string;
  readonly initiated: number;
  readonly principal: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly meta: Readonly<Record<string, string>>;
  readonly checksumAlgorithm?: ChecksumAlgorithm;
}

export interface PartRecord {
  readonly number: number;
  readonly blob: string;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: number;
  readonly checksums: Readonly<Partial<Record<ChecksumAlgorithm, string>>>;
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const ID = /^[0-9a-f]{16,64}$/;

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isObj(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!isStr(x)) return undefined;
    out[k] = x;
  }
  return out;
}

function isAlgorithm(v: unknown): v is ChecksumAlgorithm {
  return isStr(v) && (CHECKSUM_ALGORITHMS as readonly string[]).includes(v);
}

export function parseBucket(v: unknown): BucketRecord | undefined {
  if (!isObj(v)) return undefined;
  const { name, id, account, region, created } = v;
  if (!isStr(name) || !isStr(id) || !ID.test(id) || !isStr(account) || !isStr(region))
    return undefined;
  if (!isNum(created)) return undefined;
  return { name, id, account, region, created };
}

export function parseObject(v: unknown): ObjectRecord | undefined {
  if (!isObj(v)) return undefined;
  const { key, blob, size, etag, lastModified, checksum, parts } = v;
  const headers = stringMap(v.headers);
  const meta = stringMap(v.meta);
  if (!isStr(key) || !isStr(blob) || !ID.test(blob) || !isNum(size) || !isStr(etag))
    return undefined;
  if (!isNum(lastModified) || headers === undefined || meta === undefined) return undefined;
  let sum: ObjectChecksum | undefined;
  if (checksum !== undefined) {
    if (!isObj(checksum) || !isAlgorithm(checksum.algorithm) || !isStr(checksum.value))
      return undefined;
    if (checksum.type !== 'FULL_OBJECT' && checksum.type !== 'COMPOSITE') return undefined;
    sum = { algorithm: checksum.algorithm, value: checksum.value, type: checksum.type };
  }
  if (parts !== undefined && !isNum(parts)) return undefined;
  return {
    key,
    blob,
    size,
    etag,
    lastModified,
    headers,
    meta,
    ...(sum === undefined ? {} : { checksum: sum }),
    ...(parts === undefined ? {} : { parts: parts as number }),
  };
}

export function parseUpload(v: unknown): UploadRecord | undefined {
  if (!isObj(v)) return undefined;
  const { id, key, initiated, principal, checksumAlgorithm } = v;
  const headers = stringMap(v.headers);
  const meta = stringMap(v.meta);
  if (!isStr(id) || !ID.test(id) || !isStr(key) || !isNum(initiated) || !isStr(principal))
    return undefined;
  if (headers === undefined || meta === undefined) return undefined;
  if (checksumAlgorithm !== undefined && !isAlgorithm(checksumAlgorithm)) return undefined;
  return {
    id,
    key,
    initiated,
    principal,
    headers,
    meta,
    ...(checksumAlgorithm === undefined ? {} : { checksumAlgorithm }),
  };
}

export function parsePart(v: unknown): PartRecord | undefined {
  if (!isObj(v)) return undefined;
  const { number, blob, size, etag, lastModified } = v;
  const checksums = stringMap(v.checksums);
  if (!isNum(number) || !isStr(blob) || !ID.test(blob) || !isNum(size) || !isStr(etag))
    return undefined;
  if (!isNum(lastModified) || checksums === undefined) return undefined;
  if (Object.keys(checksums).some((k) => !isAlgorithm(k))) return undefined;
  return { number, blob, size, etag, lastModified, checksums };
}
