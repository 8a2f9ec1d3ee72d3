/** PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject. */
import { createReadStream } from 'node:fs';
import type { CloudResponse } from '../service.js';
import {
  BodyHasher,
  CHECKSUM_ALGORITHMS,
  CHECKSUM_ELEMENT,
  type ChecksumAlgorithm,
} from './checksums.js';
import { checkConditions } from './conditions.js';
import { MAX_LIST, MAX_SINGLE_UPLOAD_BYTES } from './limits.js';
import { parseRange } from './range.js';
import type { ObjectChecksum, ObjectRecord } from './records.js';
import {
  digestExpectations,
  header,
  storedHeaders,
  userMetadata,
  verifyDigests,
} from './request-headers.js';
import { checkKey, ownBucket, type S3Call } from './s3-call.js';
import {
  accessDenied,
  invalidArgument,
  invalidRequest,
  malformedXml,
  noSuchBucket,
  noSuchKey,
  S3Error,
} from './s3-error.js';
import { children, el, isoTime, opt, parseXml, readSmallBody, text, xmlAnswer } from './s3-xml.js';
import type { ReceivedBody } from './storage.js';

function missingLength(): S3Error {
  return new S3Error(
    411,
    'MissingContentLength',
    'You must provide the Content-Length HTTP header.',
  );
}

/** If-None-Match: * (and If-Match) on a write: checked in the bucket's turn, against the current object. */
function writeConditions(call: S3Call): ((current: ObjectRecord | undefined) => void) | undefined {
  const ifNoneMatch = header(call.req, 'if-none-match');
  const ifMatch = header(call.req, 'if-match');
  if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*')
    throw new S3Error(
      501,
      'NotImplemented',
      'A header you provided implies functionality that is not implemented',
      { Header: 'If-None-Match' },
    );
  return (current) => {
    const failed =
      (ifNoneMatch !== undefined && current !== undefined) ||
      (ifMatch !== undefined &&
        (current === undefined ||
          !ifMatch
            .split(',')
            .some((e) => e.trim() === current.etag || `"${e.trim()}"` === current.etag)));
    if (failed)
      throw new S3Error(
        412,
        'PreconditionFailed',
        'At least one of the pre-conditions you specified did not hold',
        {
          Condition: ifNoneMatch !== undefined ? 'If-None-Match' : 'If-Match',
        },
      );
    if (ifMatch !== undefined && current === undefined) throw noSuchKey(call.key);
  };
}

export async function putObject(call: S3Call): Promise<CloudResponse> {
  checkKey(call.key);
  const payload = call.req.payload;
  if (payload === undefined) throw missingLength();
  if (payload.length === undefined && header(call.req, 'transfer-encoding') === undefined)
    throw missingLength();
  if (payload.length !== undefined && payload.length > MAX_SINGLE_UPLOAD_BYTES)
    throw new S3Error(
      400,
      'EntityTooLarge',
      'Your proposed upload exceeds the maximum allowed size',
      {
        ProposedSize: String(payload.length),
        MaxSizeAllowed: String(MAX_SINGLE_UPLOAD_BYTES),
      },
    );
  const meta = userMetadata(call.req);
  const headers = storedHeaders(call.req);
  const expect = digestExpectations(call.req, payload);
  const condition = writeConditions(call);
  const bucket = await ownBucket(call);
  const body = await call.storage.receive(
    payload.stream as AsyncIterable<Buffer>,
    expect.algorithms,
    MAX_SINGLE_UPLOAD_BYTES,
  );
  let record: ObjectRecord;
  try {
    verifyDigests(expect, body, payload);
    const algorithm = expect.checksum?.algorithm ?? expect.algorithms[0];
    const value = algorithm === undefined ? undefined : body.checksums[algorithm];
    const checksum: ObjectChecksum | undefined =
      algorithm === undefined || value === undefined
        ? undefined
        : { algorithm, value, type: 'FULL_OBJECT' };
    record = await call.storage.commitObject(
      bucket,
      body.tmp,
      {
        key: call.key,
        size: body.size,
        etag: `"${body.md5.toString('hex')}"`,
        lastModified: call.storage.now(),
        headers,
        meta,
        ...(checksum === undefined ? {} : { checksum }),
      },
      condition,
    );
  } finally {
    await call.storage.discard(body.tmp);
  }
  return {
    status: 200,
    headers: {
      etag: record.etag,
      ...(record.checksum === undefined
        ? {}
        : {
            [`x-amz-checksum-${record.checksum.algorithm}`]: record.checksum.value,
            'x-amz-checksum-type': record.checksum.type,
          }),
    },
  };
}

/** The headers GET and HEAD return for an object. */
function objectHeaders(call: S3Call, record: ObjectRecord): Record<string, string> {
  const out: Record<string, string> = {
    etag: record.etag,
    'last-modified': new Date(record.lastModified).toUTCString(),
    'accept-ranges': 'bytes',
    ...record.headers,
  };
  for (const [name, value] of Object.entries(record.meta)) out[`x-amz-meta-${name}`] = value;
  if (record.parts !== undefined) out['x-amz-mp-parts-count'] = String(record.parts);
  if (header(call.req, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED' && record.checksum) {
    out[`x-amz-checksum-${record.checksum.algorithm}`] = record.checksum.value;
    out['x-amz-checksum-type'] = record.checksum.type;
  }
  // response-* query parameters override the stored headers (presigned downloads use them).
  for (const name of [
    'content-type',
    'content-language',
    'expires',
    'cache-control',
    'content-disposition',
    'content-encoding',
  ]) {
    const v = call.req.query.get(`response-${name}`);
    if (v !== null) out[name] = v.slice(0, 1024);
  }
  return out;
}

export async function getObject(call: S3Call, head: boolean): Promise<CloudResponse> {
  checkKey(call.key);
  if (call.req.query.has('partNumber'))
    throw new S3Error(
      501,
      'NotImplemented',
      'A header you provided implies functionality that is not implemented',
      { Header: 'partNumber' },
    );
  const bucket = await ownBucket(call);
  const opened = await call.storage.openObject(bucket, call.key);
  if (opened === undefined) throw noSuchKey(call.key);
  const { record, fd } = opened;
  try {
    const failed = checkConditions(call.req, record);
    if (failed !== undefined) throw failed;
    const headers = objectHeaders(call, record);
    const range = parseRange(header(call.req, 'range'), record.size);
    if (range !== undefined) {
      // A part of the object: its checksum is not the part's.
      for (const a of CHECKSUM_ALGORITHMS) delete headers[`x-amz-checksum-${a}`];
      delete headers['x-amz-checksum-type'];
      headers['content-range'] = `bytes ${range.start}-${range.end}/${record.size}`;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? record.size - 1;
    headers['content-length'] = String(end - start + 1);
    const status = range === undefined ? 200 : 206;
    if (head || record.size === 0) {
      await fd.close();
      return { status, headers };
    }
    const stream = createReadStream('', { fd, start, end, highWaterMark: 256 * 1024 });
    return { status, headers, stream };
  } catch (error) {
    await fd.close();
    throw error;
  }
}

export async function deleteObject(call: S3Call): Promise<CloudResponse> {
  checkKey(call.key);
  const bucket = await ownBucket(call);
  await call.storage.deleteObject(bucket, call.key);
  return { status: 204, headers: {} };
}

export async function deleteObjects(call: S3Call): Promise<CloudResponse> {
  const bucket = await ownBucket(call);
  const payload = call.req.payload;
  const expect = digestExpectations(call.req, payload);
  const body = await readSmallBody(payload);
  if (expect.md5 === undefined && expect.checksum === undefined)
    throw invalidRequest(
      'Missing required header for this request: Content-MD5 or x-amz-checksum-*',
    );
  const hasher = new BodyHasher(expect.algorithms);
  hasher.update(body);
  verifyDigests(expect, hasher.finish(), payload);
  const doc = parseXml(body);
  const del = doc.Delete;
  if (typeof del !== 'object' || del === null) throw malformedXml();
  const quiet = text((del as Record<string, unknown>).Quiet) === 'true';
  const objects = children(del, 'Object');
  if (objects.length === 0 || objects.length > MAX_LIST) throw malformedXml();
  const deleted: Array<{ xml: string }> = [];
  const errors: Array<{ xml: string }> = [];
  for (const o of objects) {
    const key = text((o as Record<string, unknown>).Key);
    if (key === undefined || key === '') throw malformedXml();
    try {
      checkKey(key);
      await call.storage.deleteObject(bucket, key);
      if (!quiet) deleted.push(el('Deleted', el('Key', key)));
    } catch (error) {
      const e =
        error instanceof S3Error
          ? error
          : new S3Error(
              500,
              'InternalError',
              'We encountered an internal error. Please try again.',
            );
      errors.push(el('Error', el('Key', key), el('Code', e.code), el('Message', e.message)));
    }
  }
  return xmlAnswer('DeleteResult', [...deleted, ...errors]);
}

/** x-amz-copy-source: "bucket/key" or "/bucket/key", URL-encoded, with an optional ?versionId. */
function copySource(call: S3Call): { bucket: string; key: string } {
  const raw = header(call.req, 'x-amz-copy-source') ?? '';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  if (q >= 0 && !/^versionId=(null)?$/.test(raw.slice(q + 1)))
    throw new S3Error(
      501,
      'NotImplemented',
      'A header you provided implies functionality that is not implemented',
      { Header: 'x-amz-copy-source' },
    );
  let decoded: string;
  try {
    decoded = decodeURIComponent(path.startsWith('/') ? path.slice(1) : path);
  } catch {
    throw invalidRequest('Invalid copy source encoding');
  }
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1)
    throw new S3Error(
      400,
      'InvalidArgument',
      'Copy Source must mention the source bucket and key: sourcebucket/sourcekey',
      {
        ArgumentName: 'x-amz-copy-source',
        ArgumentValue: raw.slice(0, 256),
      },
    );
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
}

/**
 * The source of a copy, in the caller's own buckets (AccessDenied for
 * another account's), copied under tmp/: the whole object, or the
 * x-amz-copy-source-range of UploadPartCopy.
 */
export async function copySourceObject(
  call: S3Call,
  options: { range?: boolean; algorithms?: Iterable<ChecksumAlgorithm> } = {},
): Promise<{ record: ObjectRecord; body: ReceivedBody }> {
  const src = copySource(call);
  checkKey(src.key);
  const owner = call.storage.findBucket(src.bucket);
  if (owner === undefined) throw noSuchBucket(src.bucket);
  if (owner.account !== call.req.account) throw accessDenied();
  const bucket = await call.storage.bucket(call.req.account, src.bucket);
  const opened = await call.storage.openObject(bucket, src.key);
  if (opened === undefined) throw noSuchKey(src.key);
  try {
    const failed = checkConditions(call.req, opened.record, 'x-amz-copy-source-');
    if (failed !== undefined) throw failed;
    const size = opened.record.size;
    let start = 0;
    let end = size - 1;
    const rangeText =
      options.range === true ? header(call.req, 'x-amz-copy-source-range') : undefined;
    if (rangeText !== undefined) {
      const m = /^bytes=(\d{1,16})-(\d{1,16})$/.exec(rangeText.trim());
      if (m === null || Number(m[1]) > Number(m[2]))
        throw invalidArgument(
          'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
          'x-amz-copy-source-range',
          rangeText,
        );
      start = Number(m[1]);
      end = Number(m[2]);
      if (end >= size)
        throw invalidRequest(`The specified copy range is invalid for the source object size`);
    }
    const body = await call.storage.copyRange(opened.fd, start, end, options.algorithms ?? []);
    return { record: opened.record, body };
  } finally {
    await opened.fd.close();
  }
}

export async function copyObject(call: S3Call): Promise<CloudResponse> {
  checkKey(call.key);
  const directive = (header(call.req, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE')
    throw new S3Error(400, 'InvalidArgument', 'Unknown metadata directive.', {
      ArgumentName: 'x-amz-metadata-directive',
      ArgumentValue: directive.slice(0, 64),
    });
  const replace = directive === 'REPLACE';
  const meta = replace ? userMetadata(call.req) : undefined;
  const headers = replace ? storedHeaders(call.req) : undefined;
  const target = await ownBucket(call);
  const src = copySource(call);
  if (src.bucket === call.bucket && src.key === call.key && !replace)
    throw invalidRequest(
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  const source = await copySourceObject(call);
  const record = await call.storage.commitObject(
    target,
    source.body.tmp,
    {
      key: call.key,
      size: source.record.size,
      etag: source.record.etag,
      lastModified: call.storage.now(),
      headers: headers ?? source.record.headers,
      meta: meta ?? source.record.meta,
      ...(source.record.checksum === undefined ? {} : { checksum: source.record.checksum }),
      ...(source.record.parts === undefined ? {} : { parts: source.record.parts }),
    },
    writeConditions(call),
  );
  const sum = record.checksum;
  return xmlAnswer('CopyObjectResult', [
    el('LastModified', isoTime(record.lastModified)),
    el('ETag', record.etag),
    sum === undefined ? undefined : opt(CHECKSUM_ELEMENT[sum.algorithm], sum.value),
    sum === undefined ? undefined : el('ChecksumType', sum.type),
  ]);
}
