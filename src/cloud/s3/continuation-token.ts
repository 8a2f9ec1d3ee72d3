/**
 * ListObjectsV2 continuation tokens: opaque to the client, and checked when
 * they come back. A token names the bucket (by its id, so a recreated bucket
 * refuses the old tokens) and where the listing stopped, and carries an HMAC
 * under the storage's secret, so a forged or altered token is refused.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { invalidArgument } from './s3-error.js';

export interface ListPosition {
  /** The last key or common prefix returned. */
  readonly after: string;
  /** Whether `after` is a common prefix (then every key under it is skipped). */
  readonly prefix: boolean;
}

function mac(key: Buffer, body: string): Buffer {
  return createHmac('sha256', key).update(body).digest().subarray(0, 16);
}

export function encodeToken(key: Buffer, bucketId: string, position: ListPosition): string {
  const body = Buffer.from(
    JSON.stringify({ b: bucketId, a: position.after, p: position.prefix ? 1 : 0 }),
  ).toString('base64url');
  return `${body}.${mac(key, body).toString('base64url')}`;
}

export function decodeToken(key: Buffer, bucketId: string, token: string): ListPosition {
  const bad = () =>
    invalidArgument('The continuation token provided is incorrect', 'continuation-token', token);
  const dot = token.indexOf('.');
  if (dot < 0 || token.length > 4096) throw bad();
  const body = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = mac(key, body);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw bad();
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const d = doc as { b?: unknown; a?: unknown; p?: unknown };
  if (d.b !== bucketId || typeof d.a !== 'string') throw bad();
  return { after: d.a, prefix: d.p === 1 };
}
