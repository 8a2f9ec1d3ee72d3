/**
 * Conditional reads (If-Match, If-None-Match, If-Modified-Since,
 * If-Unmodified-Since) with RFC 7232's precedence, which S3 follows: a
 * matching If-Match overrides a failing If-Unmodified-Since, a failing
 * If-None-Match overrides If-Modified-Since.
 */
import type { CloudRequest } from '../service.js';
import type { ObjectRecord } from './records.js';
import { header } from './request-headers.js';
import { S3Error } from './s3-error.js';

function etagMatches(list: string, etag: string): boolean {
  return list
    .split(',')
    .map((s) => s.trim())
    .some((s) => s === '*' || s === etag || `"${s}"` === etag || s.replace(/^W\//, '') === etag);
}

function httpDate(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The answer a read gets instead of the object (412 or 304), or undefined to proceed. */
export function checkConditions(
  req: CloudRequest,
  record: ObjectRecord,
  prefix = '',
): S3Error | undefined {
  const ifMatch = header(req, `${prefix}if-match`);
  const ifNoneMatch = header(req, `${prefix}if-none-match`);
  const ifModified = httpDate(header(req, `${prefix}if-modified-since`));
  const ifUnmodified = httpDate(header(req, `${prefix}if-unmodified-since`));
  // HTTP dates have whole seconds.
  const modified = Math.floor(record.lastModified / 1000) * 1000;
  const failed = () =>
    new S3Error(
      412,
      'PreconditionFailed',
      'At least one of the pre-conditions you specified did not hold',
      {
        Condition: ifMatch !== undefined ? 'If-Match' : 'If-Unmodified-Since',
      },
    );
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, record.etag)) return failed();
  } else if (ifUnmodified !== undefined && modified > ifUnmodified) return failed();
  const notModified = () =>
    new S3Error(304, 'NotModified', 'Not Modified', {}, { etag: record.etag });
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, record.etag)) return prefix === '' ? notModified() : failed();
  } else if (ifModified !== undefined && modified <= ifModified)
    return prefix === '' ? notModified() : failed();
  return undefined;
}
