import { createHash } from 'node:crypto';
import {
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { FerryError } from '../errors/index.js';
import { io, type S3Bucket } from './s3-bucket.js';

const MiB = 1024 * 1024;
/** S3's bounds: every part but the last at least 5 MiB, none over 5 GiB, objects up to 5 TiB. */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB;
/** The largest body one PutObject may carry. */
export const MAX_SINGLE_PUT = 5 * 1024 * MiB;

/**
 * Parts uploading at once. One more part is being filled from the source
 * meanwhile, so an upload holds at most (PARTS_IN_FLIGHT + 1) × part size
 * bytes: 48 MiB with the default 16 MiB parts.
 */
export const PARTS_IN_FLIGHT = 2;

export interface MultipartSettings {
  /** Objects larger than this go up in parts (default 64 MiB, at most 5 GiB). */
  readonly threshold: number;
  /** Bytes per part (default 16 MiB, at least 5 MiB); larger when an object would need over maxParts. */
  readonly partSize: number;
  /** Parts an upload may have: 10,000 on S3; Swift's s3api allows 1,000 unless max_upload_part_num is raised. */
  readonly maxParts: number;
}

export const DEFAULT_MULTIPART: MultipartSettings = {
  threshold: 64 * MiB,
  partSize: 16 * MiB,
  maxParts: 10_000,
};

/** Settings checked against S3's limits (FERRY_USAGE when outside them). */
export function multipartSettings(given: Partial<MultipartSettings> = {}): MultipartSettings {
  const s = { ...DEFAULT_MULTIPART, ...given };
  const whole = (n: number, lo: number, hi: number) =>
    Number.isSafeInteger(n) && n >= lo && n <= hi;
  if (
    !whole(s.threshold, MIN_PART_SIZE, MAX_SINGLE_PUT) ||
    !whole(s.partSize, MIN_PART_SIZE, MAX_PART_SIZE) ||
    !whole(s.maxParts, 1, 10_000)
  )
    throw new FerryError(
      'FERRY_USAGE',
      'Cannot use these multipart settings: the threshold and the part size must be 5 MiB to 5 GiB, the part count 1 to 10,000',
    );
  return s;
}

/** The part size for an object of `size` bytes: the configured one, or larger (whole MiB) to stay within maxParts. */
export function partSizeFor(size: number, s: MultipartSettings): number {
  const least = Math.ceil(Math.ceil(size / s.maxParts) / MiB) * MiB;
  const partSize = Math.max(s.partSize, least);
  if (size > MAX_OBJECT_SIZE || partSize > MAX_PART_SIZE)
    throw new FerryError(
      'FERRY_NOT_CAPABLE',
      `Cannot store an object of ${size} bytes in S3: over ${s.maxParts} parts of 5 GiB or over 5 TiB`,
    );
  return partSize;
}

function corrupt(id: string, why: string, cause?: unknown): FerryError {
  return new FerryError(
    'FERRY_STORE_OBJECT_CORRUPT',
    `Cannot store object ${id.slice(0, 16)}…: ${why}`,
    {
      details: { id },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

/**
 * Uploads an object in parts straight under its key. Nothing is visible
 * until CompleteMultipartUpload, and that is sent only once the bytes read
 * have hashed to `id` and counted `size`; each part carries its Content-MD5,
 * so the server refuses a part damaged on the way (BadDigest). Any failure,
 * an abort included, aborts the upload: the bucket keeps no parts (a process
 * killed midway leaves an open upload, which gc aborts after its grace
 * period). Part requests are retried by the SDK's retry policy (the body is
 * a buffer, so a retry resends it); the part ETags are passed back to
 * CompleteMultipartUpload as S3 requires, never taken as a checksum.
 */
export async function uploadInParts(
  bucket: S3Bucket,
  key: string,
  id: string,
  size: number,
  data: AsyncIterable<Buffer>,
  settings: MultipartSettings,
  signal?: AbortSignal,
): Promise<void> {
  const partSize = partSizeFor(size, settings);
  const opts = signal === undefined ? {} : { abortSignal: signal };
  let uploadId: string;
  try {
    const r = await bucket.client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket.bucket, Key: key }),
      opts,
    );
    if (r.UploadId === undefined) throw new Error('no UploadId in the answer');
    uploadId = r.UploadId;
  } catch (error) {
    throw io(`start an upload of object ${id.slice(0, 16)}…`, error);
  }

  const parts: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  const spare: Buffer[] = [];
  let failure: unknown;
  const send = (buffer: Buffer, length: number, partNumber: number): void => {
    const body = buffer.subarray(0, length);
    const md5 = createHash('md5').update(body).digest('base64');
    const p: Promise<void> = bucket.client
      .send(
        new UploadPartCommand({
          Bucket: bucket.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: length,
          ContentMD5: md5,
        }),
        opts,
      )
      .then(
        (r) => {
          parts.push({ PartNumber: partNumber, ETag: r.ETag });
        },
        (error: unknown) => {
          const e = error as { name?: string };
          failure ??=
            e.name === 'BadDigest' || e.name === 'InvalidDigest'
              ? corrupt(id, `part ${partNumber} arrived damaged (${e.name})`, error)
              : io(`upload part ${partNumber} of object ${id.slice(0, 16)}…`, error);
        },
      )
      .finally(() => {
        inFlight.delete(p);
        spare.push(buffer);
      });
    inFlight.add(p);
  };

  try {
    const hash = createHash('sha512');
    let total = 0;
    let partNumber = 0;
    let buffer: Buffer = Buffer.allocUnsafe(partSize);
    let filled = 0;
    for await (const chunk of data) {
      if (failure !== undefined) throw failure;
      total += chunk.length;
      if (total > size) throw corrupt(id, `the source gave more than ${size} bytes`);
      hash.update(chunk);
      for (let at = 0; at < chunk.length; ) {
        const n = Math.min(chunk.length - at, partSize - filled);
        chunk.copy(buffer, filled, at, at + n);
        filled += n;
        at += n;
        if (filled < partSize) continue;
        send(buffer, filled, ++partNumber);
        while (inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(inFlight);
        if (failure !== undefined) throw failure;
        buffer = spare.pop() ?? Buffer.allocUnsafe(partSize);
        filled = 0;
      }
    }
    if (filled > 0) send(buffer, filled, ++partNumber);
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    if (total !== size) throw corrupt(id, `the source gave ${total} bytes, not ${size}`);
    const actual = hash.digest('hex');
    if (actual !== id) throw corrupt(id, `the bytes hash to ${actual.slice(0, 16)}…`);
    parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    try {
      await bucket.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
        opts,
      );
    } catch (error) {
      throw io(`complete the upload of object ${id.slice(0, 16)}…`, error);
    }
  } catch (error) {
    await Promise.allSettled([...inFlight]);
    // Without the caller's signal: an aborted upload must still be aborted on the server.
    await bucket.abortUpload(key, uploadId).catch(() => {});
    throw io(`store object ${id.slice(0, 16)}…`, error);
  }
  // The server assembled the parts: a wrong length means it did not assemble what was sent.
  const stored = await bucket.head(key, signal);
  if (stored?.size !== size) {
    await bucket.deleteKey(key).catch(() => {});
    throw corrupt(
      id,
      `the server holds ${stored?.size ?? 'no'} bytes after the upload, not ${size}`,
    );
  }
}
