/**
 * Multipart uploads: CreateMultipartUpload, UploadPart, ListParts,
 * ListMultipartUploads, CompleteMultipartUpload, AbortMultipartUpload.
 */
import { createHash } from 'node:crypto';
import type { CloudResponse } from '../service.js';
import {
  CHECKSUM_ELEMENT,
  type ChecksumAlgorithm,
  checksumAlgorithm,
  digestOf,
} from './checksums.js';
import { compareKeys } from './key-order.js';
import { MAX_LIST, MAX_PART_NUMBER, MAX_SINGLE_UPLOAD_BYTES, MIN_PART_BYTES } from './limits.js';
import { isCommonPrefix } from './listing.js';
import { copySourceObject } from './object-operations.js';
import type { ObjectChecksum, PartRecord } from './records.js';
import {
  digestExpectations,
  header,
  storedHeaders,
  userMetadata,
  verifyDigests,
} from './request-headers.js';
import { checkKey, intParam, keyEncoder, ownBucket, ownerXml, type S3Call } from './s3-call.js';
import { invalidArgument, malformedXml, noSuchUpload, S3Error } from './s3-error.js';
import { children, el, isoTime, opt, parseXml, readSmallBody, text, xmlAnswer } from './s3-xml.js';
import type { Bucket, Upload } from './storage.js';

function uploadOf(call: S3Call, bucket: Bucket): Upload {
  const id = call.req.query.get('uploadId') ?? '';
  const upload = call.storage.upload(bucket, id);
  if (upload.record.key !== call.key) throw noSuchUpload(id);
  return upload;
}

export async function createMultipartUpload(call: S3Call): Promise<CloudResponse> {
  checkKey(call.key);
  const algorithmHeader = header(call.req, 'x-amz-checksum-algorithm');
  const algorithm =
    algorithmHeader === undefined
      ? undefined
      : checksumAlgorithm(algorithmHeader, 'x-amz-checksum-algorithm');
  const meta = userMetadata(call.req);
  const headers = storedHeaders(call.req);
  const bucket = await ownBucket(call);
  const upload = await call.storage.createUpload(bucket, {
    key: call.key,
    initiated: call.storage.now(),
    principal: call.req.principal,
    headers,
    meta,
    ...(algorithm === undefined ? {} : { checksumAlgorithm: algorithm }),
  });
  return xmlAnswer(
    'InitiateMultipartUploadResult',
    [el('Bucket', call.bucket), el('Key', call.key), el('UploadId', upload.id)],
    algorithm === undefined ? {} : { 'x-amz-checksum-algorithm': algorithm.toUpperCase() },
  );
}

export async function uploadPart(call: S3Call): Promise<CloudResponse> {
  checkKey(call.key);
  const numberText = call.req.query.get('partNumber') ?? '';
  const number = /^\d{1,5}$/.test(numberText) ? Number(numberText) : 0;
  if (number < 1 || number > MAX_PART_NUMBER)
    throw invalidArgument(
      `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`,
      'partNumber',
      numberText,
    );
  if (header(call.req, 'x-amz-copy-source') !== undefined) return uploadPartCopy(call, number);
  const payload = call.req.payload;
  if (
    payload === undefined ||
    (payload.length === undefined && header(call.req, 'transfer-encoding') === undefined)
  )
    throw new S3Error(
      411,
      'MissingContentLength',
      'You must provide the Content-Length HTTP header.',
    );
  if (payload.length !== undefined && payload.length > MAX_SINGLE_UPLOAD_BYTES)
    throw new S3Error(
      400,
      'EntityTooLarge',
      'Your proposed upload exceeds the maximum allowed size',
    );
  const bucket = await ownBucket(call);
  const upload = uploadOf(call, bucket);
  const expect = digestExpectations(call.req, payload, upload.record.checksumAlgorithm);
  const body = await call.storage.receive(
    payload.stream as AsyncIterable<Buffer>,
    expect.algorithms,
    MAX_SINGLE_UPLOAD_BYTES,
  );
  try {
    verifyDigests(expect, body, payload);
    const part = await call.storage.commitPart(bucket, upload, body.tmp, {
      number,
      size: body.size,
      etag: `"${body.md5.toString('hex')}"`,
      lastModified: call.storage.now(),
      checksums: body.checksums,
    });
    const headers: Record<string, string> = { etag: part.etag };
    for (const [a, v] of Object.entries(part.checksums)) headers[`x-amz-checksum-${a}`] = v;
    return { status: 200, headers };
  } finally {
    await call.storage.discard(body.tmp);
  }
}

/** UploadPartCopy: a part from (a range of) an object of the caller's. */
async function uploadPartCopy(call: S3Call, number: number): Promise<CloudResponse> {
  const bucket = await ownBucket(call);
  const upload = uploadOf(call, bucket);
  const alg = upload.record.checksumAlgorithm;
  const { body } = await copySourceObject(call, {
    range: true,
    algorithms: alg === undefined ? [] : [alg],
  });
  try {
    if (body.size > MAX_SINGLE_UPLOAD_BYTES)
      throw new S3Error(
        400,
        'EntityTooLarge',
        'Your proposed upload exceeds the maximum allowed size',
      );
    const part = await call.storage.commitPart(bucket, upload, body.tmp, {
      number,
      size: body.size,
      etag: `"${body.md5.toString('hex')}"`,
      lastModified: call.storage.now(),
      checksums: body.checksums,
    });
    return xmlAnswer('CopyPartResult', [
      el('LastModified', isoTime(part.lastModified)),
      el('ETag', part.etag),
      ...Object.entries(part.checksums).map(([a, v]) =>
        el(CHECKSUM_ELEMENT[a as ChecksumAlgorithm], v),
      ),
    ]);
  } finally {
    await call.storage.discard(body.tmp);
  }
}

function partXml(p: PartRecord) {
  return el(
    'Part',
    el('PartNumber', p.number),
    el('LastModified', isoTime(p.lastModified)),
    el('ETag', p.etag),
    el('Size', p.size),
    Object.entries(p.checksums).map(([a, v]) => el(CHECKSUM_ELEMENT[a as ChecksumAlgorithm], v)),
  );
}

export async function listParts(call: S3Call): Promise<CloudResponse> {
  checkKey(call.key);
  const bucket = await ownBucket(call);
  const upload = uploadOf(call, bucket);
  const max = intParam(call, 'max-parts', MAX_LIST, 0, MAX_LIST);
  const marker = intParam(call, 'part-number-marker', 0, 0, MAX_PART_NUMBER);
  const all = [...upload.parts.values()]
    .filter((p) => p.number > marker)
    .sort((a, b) => a.number - b.number);
  const page = all.slice(0, max);
  const truncated = all.length > page.length;
  const last = page[page.length - 1];
  const alg = upload.record.checksumAlgorithm;
  return xmlAnswer('ListPartsResult', [
    el('Bucket', call.bucket),
    el('Key', call.key),
    el('UploadId', upload.record.id),
    el('PartNumberMarker', marker),
    truncated && last !== undefined ? el('NextPartNumberMarker', last.number) : undefined,
    el('MaxParts', max),
    el('IsTruncated', truncated),
    ...page.map(partXml),
    el('Initiator', el('ID', upload.record.principal), el('DisplayName', call.req.account)),
    ownerXml(call.req.account),
    el('StorageClass', 'STANDARD'),
    alg === undefined ? undefined : el('ChecksumAlgorithm', alg.toUpperCase()),
  ]);
}

export async function listMultipartUploads(call: S3Call): Promise<CloudResponse> {
  const bucket = await ownBucket(call);
  const q = call.req.query;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const keyMarker = q.get('key-marker') ?? undefined;
  const idMarker = keyMarker === undefined ? undefined : (q.get('upload-id-marker') ?? undefined);
  const max = intParam(call, 'max-uploads', MAX_LIST, 0, MAX_LIST);
  const enc = keyEncoder(call);
  const sorted = [...bucket.uploads.values()]
    .map((u) => u.record)
    .filter((u) => u.key.startsWith(prefix))
    .sort((a, b) => compareKeys(a.key, b.key) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const uploads: Array<{ xml: string }> = [];
  const prefixes: Array<{ xml: string }> = [];
  let lastPrefix =
    keyMarker !== undefined && isCommonPrefix(keyMarker, prefix, delimiter) ? keyMarker : undefined;
  let nextKey: string | undefined;
  let nextId: string | undefined;
  let truncated = false;
  let count = 0;
  for (const u of sorted) {
    if (keyMarker !== undefined) {
      const c = compareKeys(u.key, keyMarker);
      if (c < 0 || (c === 0 && (idMarker === undefined || u.id <= idMarker))) continue;
    }
    if (lastPrefix !== undefined && u.key.startsWith(lastPrefix)) continue;
    let common: string | undefined;
    if (delimiter !== '') {
      const at = u.key.indexOf(delimiter, prefix.length);
      if (at >= 0) common = u.key.slice(0, at + delimiter.length);
    }
    if (count === max) {
      truncated = true;
      break;
    }
    count++;
    if (common !== undefined) {
      lastPrefix = common;
      prefixes.push(el('CommonPrefixes', el('Prefix', enc.encode(common))));
      nextKey = common;
      nextId = undefined;
    } else {
      uploads.push(
        el(
          'Upload',
          el('Key', enc.encode(u.key)),
          el('UploadId', u.id),
          el('Initiator', el('ID', u.principal), el('DisplayName', call.req.account)),
          ownerXml(call.req.account),
          el('StorageClass', 'STANDARD'),
          el('Initiated', isoTime(u.initiated)),
          u.checksumAlgorithm === undefined
            ? undefined
            : el('ChecksumAlgorithm', u.checksumAlgorithm.toUpperCase()),
        ),
      );
      nextKey = u.key;
      nextId = u.id;
    }
  }
  return xmlAnswer('ListMultipartUploadsResult', [
    el('Bucket', call.bucket),
    el('KeyMarker', enc.encode(keyMarker ?? '')),
    el('UploadIdMarker', idMarker ?? ''),
    truncated
      ? opt('NextKeyMarker', nextKey === undefined ? undefined : enc.encode(nextKey))
      : undefined,
    truncated ? opt('NextUploadIdMarker', nextId ?? '') : undefined,
    delimiter === '' ? undefined : el('Delimiter', enc.encode(delimiter)),
    prefix === '' ? undefined : el('Prefix', enc.encode(prefix)),
    el('MaxUploads', max),
    el('IsTruncated', truncated),
    ...uploads,
    ...prefixes,
    enc.type === undefined ? undefined : el('EncodingType', enc.type),
  ]);
}

/** The parts CompleteMultipartUpload lists: number, ETag and optional checksums. */
function requestedParts(doc: Record<string, unknown>): Array<{
  number: number;
  etag: string;
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
}> {
  const root = doc.CompleteMultipartUpload;
  if (typeof root !== 'object' || root === null) throw malformedXml();
  const parts = children(root, 'Part');
  if (parts.length === 0 || parts.length > MAX_PART_NUMBER) throw malformedXml();
  return parts.map((p) => {
    const o = p as Record<string, unknown>;
    const numberText = text(o.PartNumber);
    const etag = text(o.ETag);
    if (numberText === undefined || !/^\d{1,5}$/.test(numberText) || etag === undefined)
      throw malformedXml();
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const [a, name] of Object.entries(CHECKSUM_ELEMENT)) {
      const v = text(o[name]);
      if (v !== undefined) checksums[a as ChecksumAlgorithm] = v;
    }
    return { number: Number(numberText), etag: etag.trim(), checksums };
  });
}

function invalidPart(): S3Error {
  return new S3Error(
    400,
    'InvalidPart',
    "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
  );
}

export async function completeMultipartUpload(call: S3Call): Promise<CloudResponse> {
  checkKey(call.key);
  const bucket = await ownBucket(call);
  const upload = uploadOf(call, bucket);
  const wanted = requestedParts(parseXml(await readSmallBody(call.req.payload)));
  let previous = 0;
  for (const w of wanted) {
    if (w.number <= previous)
      throw new S3Error(
        400,
        'InvalidPartOrder',
        'The list of parts was not in ascending order. Parts must be ordered by part number.',
      );
    previous = w.number;
  }
  const parts: PartRecord[] = wanted.map((w) => {
    const p = upload.parts.get(w.number);
    const etag = w.etag.startsWith('"') ? w.etag : `"${w.etag}"`;
    if (p === undefined || p.etag !== etag) throw invalidPart();
    for (const [a, v] of Object.entries(w.checksums))
      if (p.checksums[a as ChecksumAlgorithm] !== v) throw invalidPart();
    return p;
  });
  for (const [i, p] of parts.entries())
    if (i < parts.length - 1 && p.size < MIN_PART_BYTES)
      throw new S3Error(
        400,
        'EntityTooSmall',
        'Your proposed upload is smaller than the minimum allowed object size.',
        {
          ProposedSize: String(p.size),
          MinSizeAllowed: String(MIN_PART_BYTES),
          PartNumber: String(p.number),
          ETag: p.etag,
        },
      );
  // The ETag of a multipart object: the MD5 of the parts' binary MD5s, and the count.
  const md5s = createHash('md5');
  for (const p of parts) md5s.update(Buffer.from(p.etag.slice(1, -1), 'hex'));
  const etag = `"${md5s.digest('hex')}-${parts.length}"`;
  const alg = upload.record.checksumAlgorithm;
  let checksum: ObjectChecksum | undefined;
  if (alg !== undefined && parts.every((p) => p.checksums[alg] !== undefined)) {
    const raw = Buffer.concat(parts.map((p) => Buffer.from(p.checksums[alg]!, 'base64')));
    checksum = {
      algorithm: alg,
      value: `${digestOf(alg, raw).toString('base64')}-${parts.length}`,
      type: 'COMPOSITE',
    };
  }
  await call.storage.beginComplete(bucket, upload);
  let tmp: string | undefined;
  try {
    tmp = await call.storage.concatenate(call.storage.partPaths(bucket, parts));
    await call.storage.commitObject(bucket, tmp, {
      key: call.key,
      size: parts.reduce((n, p) => n + p.size, 0),
      etag,
      lastModified: call.storage.now(),
      headers: upload.record.headers,
      meta: upload.record.meta,
      parts: parts.length,
      ...(checksum === undefined ? {} : { checksum }),
    });
  } catch (error) {
    call.storage.endComplete(upload);
    if (tmp !== undefined) await call.storage.discard(tmp);
    throw error;
  }
  await call.storage.removeUpload(bucket, upload, false);
  return xmlAnswer('CompleteMultipartUploadResult', [
    el('Location', `/${call.bucket}/${call.key}`),
    el('Bucket', call.bucket),
    el('Key', call.key),
    el('ETag', etag),
    checksum === undefined ? undefined : el(CHECKSUM_ELEMENT[checksum.algorithm], checksum.value),
    checksum === undefined ? undefined : el('ChecksumType', checksum.type),
  ]);
}

export async function abortMultipartUpload(call: S3Call): Promise<CloudResponse> {
  checkKey(call.key);
  const bucket = await ownBucket(call);
  const upload = uploadOf(call, bucket);
  await call.storage.removeUpload(bucket, upload, true);
  return { status: 204, headers: {} };
}
