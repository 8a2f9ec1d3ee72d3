/** ListObjectsV2 and ListObjects (V1): the same walk, with tokens or markers. */
import type { CloudResponse } from '../service.js';
import { decodeToken, encodeToken, type ListPosition } from './continuation-token.js';
import { MAX_LIST } from './limits.js';
import { isCommonPrefix, type ListEntry, walk } from './listing.js';
import type { ObjectRecord } from './records.js';
import { intParam, keyEncoder, ownBucket, ownerXml, type S3Call } from './s3-call.js';
import { el, isoTime, opt, xmlAnswer } from './s3-xml.js';
import type { Bucket } from './storage.js';

function contents(
  bucket: Bucket,
  entries: readonly ListEntry[],
  encode: (s: string) => string,
  owner: string | undefined,
) {
  const out: Array<{ xml: string }> = [];
  const prefixes: Array<{ xml: string }> = [];
  for (const e of entries) {
    if (e.kind === 'prefix') {
      prefixes.push(el('CommonPrefixes', el('Prefix', encode(e.prefix))));
      continue;
    }
    const o = bucket.objects.get(e.key) as ObjectRecord;
    out.push(
      el(
        'Contents',
        el('Key', encode(o.key)),
        el('LastModified', isoTime(o.lastModified)),
        el('ETag', o.etag),
        o.checksum === undefined
          ? undefined
          : el('ChecksumAlgorithm', o.checksum.algorithm.toUpperCase()),
        o.checksum === undefined ? undefined : el('ChecksumType', o.checksum.type),
        el('Size', o.size),
        owner === undefined ? undefined : ownerXml(owner),
        el('StorageClass', 'STANDARD'),
      ),
    );
  }
  return [...out, ...prefixes];
}

export async function listObjectsV2(call: S3Call): Promise<CloudResponse> {
  const bucket = await ownBucket(call);
  const q = call.req.query;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const startAfter = q.get('start-after') ?? undefined;
  const token = q.get('continuation-token') ?? undefined;
  const max = intParam(call, 'max-keys', MAX_LIST, 0, MAX_LIST);
  const enc = keyEncoder(call);
  let position: ListPosition | undefined;
  if (token !== undefined) position = decodeToken(call.storage.tokenKey, bucket.record.id, token);
  else if (startAfter !== undefined) position = { after: startAfter, prefix: false };
  const page =
    max === 0
      ? { entries: [], truncated: false }
      : walk(bucket.keys, {
          prefix,
          delimiter,
          after: position?.after,
          afterIsPrefix: position?.prefix ?? false,
          max,
        });
  const last = page.entries[page.entries.length - 1];
  const next =
    page.truncated && last !== undefined
      ? encodeToken(call.storage.tokenKey, bucket.record.id, {
          after: last.kind === 'key' ? last.key : last.prefix,
          prefix: last.kind === 'prefix',
        })
      : undefined;
  return xmlAnswer('ListBucketResult', [
    el('Name', call.bucket),
    el('Prefix', enc.encode(prefix)),
    delimiter === '' ? undefined : el('Delimiter', enc.encode(delimiter)),
    el('MaxKeys', max),
    enc.type === undefined ? undefined : el('EncodingType', enc.type),
    el('IsTruncated', page.truncated),
    el('KeyCount', page.entries.length),
    opt('ContinuationToken', token),
    opt('NextContinuationToken', next),
    startAfter === undefined ? undefined : el('StartAfter', enc.encode(startAfter)),
    ...contents(
      bucket,
      page.entries,
      enc.encode,
      q.get('fetch-owner') === 'true' ? call.req.account : undefined,
    ),
  ]);
}

/** V1: `marker` instead of tokens; NextMarker only when a delimiter is given, as S3 does. */
export async function listObjects(call: S3Call): Promise<CloudResponse> {
  const bucket = await ownBucket(call);
  const q = call.req.query;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const marker = q.get('marker') ?? undefined;
  const max = intParam(call, 'max-keys', MAX_LIST, 0, MAX_LIST);
  const enc = keyEncoder(call);
  const page =
    max === 0
      ? { entries: [], truncated: false }
      : walk(bucket.keys, {
          prefix,
          delimiter,
          after: marker,
          afterIsPrefix: marker !== undefined && isCommonPrefix(marker, prefix, delimiter),
          max,
        });
  const last = page.entries[page.entries.length - 1];
  const nextMarker =
    page.truncated && delimiter !== '' && last !== undefined
      ? last.kind === 'key'
        ? last.key
        : last.prefix
      : undefined;
  return xmlAnswer('ListBucketResult', [
    el('Name', call.bucket),
    el('Prefix', enc.encode(prefix)),
    el('Marker', enc.encode(marker ?? '')),
    nextMarker === undefined ? undefined : el('NextMarker', enc.encode(nextMarker)),
    el('MaxKeys', max),
    delimiter === '' ? undefined : el('Delimiter', enc.encode(delimiter)),
    enc.type === undefined ? undefined : el('EncodingType', enc.type),
    el('IsTruncated', page.truncated),
    ...contents(bucket, page.entries, enc.encode, call.req.account),
  ]);
}
