/**
 * A file to S3 in parts, resumable: the upload id is checkpointed as soon as
 * S3 gives it, and a later run with that id asks S3 which parts it holds
 * (ListParts) and sends only those that are missing or whose size or MD5
 * (the part's ETag) differ from the file's. N workers pull part numbers from
 * one iterator, each reading its part into its own buffer: memory is
 * concurrency × partSize bytes (4 × 64 MiB = 256 MiB with the defaults),
 * whatever the file's size. Each part carries its Content-MD5 and SHA-256
 * (the upload is created with ChecksumAlgorithm SHA256), so S3 refuses a part
 * damaged on the way; a resume compares the SHA-256 ListParts gives (the
 * ETag, which is the MD5 except on SSE-KMS buckets, when it gives none).
 *
 * An abort leaves the upload open (the checkpoint resumes it); any other
 * failure is thrown as it is and the caller decides: `abortUpload` and
 * `deleteObject` clean up.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, stat } from 'node:fs/promises';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListPartsCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { FerryError } from '../../errors/index.js';
import { notFound } from '../../store/s3-bucket.js';
import { DEFAULT_MULTIPART, MIN_PART_SIZE, partSizeFor } from '../../store/s3-multipart.js';
import type { Checkpoint } from '../types.js';
import { awsCode, awsFailure, throwIfAborted } from './aws-failure.js';

const MiB = 1024 * 1024;
export const DEFAULT_PART_SIZE = 64 * MiB;
export const DEFAULT_CONCURRENCY = 4;
/** S3's limit of parts per upload. */
export const MAX_PARTS = 10_000;
/** ListParts answers at most this many parts a page. */
const LIST_PAGE = 1000;

export interface UploadProgress {
  readonly totalBytes: number;
  /** Bytes sent in this run, and bytes S3 already held from an earlier one. */
  readonly sentBytes: number;
  readonly reusedBytes: number;
  readonly partsSent: number;
  readonly partsReused: number;
  readonly partsTotal: number;
}

export interface UploadFileOptions {
  readonly bucket: string;
  readonly key: string;
  /** The local file. */
  readonly path: string;
  /**
   * Bytes per part: default 64 MiB, at least 5 MiB; grown (whole MiB) when
   * the file would need more than 10,000 parts.
   */
  readonly partSize?: number;
  /** Parts in flight at once (default 4). Memory is concurrency × partSize. */
  readonly concurrency?: number;
  /** Holds the upload id across a crash; a saved id is resumed. */
  readonly checkpoint: Checkpoint<{ uploadId: string }>;
  /** Create the bucket when it does not exist (default false). */
  readonly createBucket?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: UploadProgress) => void;
}

export interface UploadResult {
  /** The object's ETag, quotes included (a multipart ETag: MD5 of the parts' MD5s, dash, count). */
  readonly etag: string;
  readonly bytes: number;
  readonly partSize: number;
  readonly partsSent: number;
  readonly partsReused: number;
  readonly uploadId: string;
}

interface Part {
  readonly number: number;
  readonly offset: number;
  readonly length: number;
}

/** What S3 holds of an upload: part number → size, ETag and SHA-256 (base64, when listed). */
type Held = Map<number, { size: number; etag: string; sha256: string | undefined }>;

function usage(message: string, details: Record<string, string | number>): FerryError {
  return new FerryError('FERRY_USAGE', message, { details });
}

/** The part size for `size` bytes given the asked one (FERRY_USAGE when below 5 MiB). */
export function uploadPartSize(size: number, asked = DEFAULT_PART_SIZE): number {
  if (!Number.isSafeInteger(asked) || asked < MIN_PART_SIZE)
    throw usage(`Cannot upload with parts of ${asked} bytes: a part is at least 5 MiB`, {
      partSize: asked,
    });
  return partSizeFor(size, { ...DEFAULT_MULTIPART, partSize: asked, maxParts: MAX_PARTS });
}

function partsOf(size: number, partSize: number): Part[] {
  const parts: Part[] = [];
  for (let offset = 0, number = 1; offset < size; offset += partSize, number++)
    parts.push({ number, offset, length: Math.min(partSize, size - offset) });
  return parts;
}

const unquote = (etag: string): string => etag.replace(/^"|"$/g, '').toLowerCase();

/** Creates the bucket when HeadBucket says it does not exist (a bucket we already own is fine). */
export async function ensureBucket(
  s3: S3Client,
  bucket: string,
  signal?: AbortSignal,
): Promise<void> {
  const opts = signal === undefined ? {} : { abortSignal: signal };
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }), opts);
    return;
  } catch (error) {
    if (!notFound(error))
      throw awsFailure('FERRY_UPLOAD_FAILED', `check bucket ${bucket}`, error, signal);
  }
  const region = await s3.config.region();
  try {
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ...(region === 'us-east-1'
          ? {}
          : {
              CreateBucketConfiguration: {
                LocationConstraint: region as 'eu-west-1',
              },
            }),
      }),
      opts,
    );
  } catch (error) {
    if (awsCode(error) === 'BucketAlreadyOwnedByYou') return;
    throw awsFailure('FERRY_UPLOAD_FAILED', `create bucket ${bucket}`, error, signal);
  }
}

/** Every part S3 holds of the upload (ListParts, paged); undefined when the upload is gone. */
async function heldParts(
  s3: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  signal?: AbortSignal,
): Promise<Held | undefined> {
  const held: Held = new Map();
  let marker: string | undefined;
  for (;;) {
    let page: Awaited<ReturnType<typeof listPage>>;
    try {
      page = await listPage(s3, bucket, key, uploadId, marker, signal);
    } catch (error) {
      if (awsCode(error) === 'NoSuchUpload' || notFound(error)) return undefined;
      throw awsFailure('FERRY_UPLOAD_FAILED', `list the parts of s3://${bucket}/${key}`, error);
    }
    for (const p of page.Parts ?? [])
      if (p.PartNumber !== undefined && p.ETag !== undefined && p.Size !== undefined)
        held.set(p.PartNumber, { size: p.Size, etag: unquote(p.ETag), sha256: p.ChecksumSHA256 });
    if (page.IsTruncated !== true) return held;
    const next = page.NextPartNumberMarker;
    if (next === undefined || next === marker)
      throw new FerryError(
        'FERRY_UPLOAD_FAILED',
        `Cannot list the parts of s3://${bucket}/${key}: a truncated page gave no next marker`,
      );
    marker = next;
  }
}

function listPage(
  s3: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  marker: string | undefined,
  signal?: AbortSignal,
) {
  return s3.send(
    new ListPartsCommand({
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      MaxParts: LIST_PAGE,
      ...(marker === undefined ? {} : { PartNumberMarker: marker }),
    }),
    signal === undefined ? {} : { abortSignal: signal },
  );
}

async function readPart(fh: FileHandle, part: Part, into: Buffer): Promise<Buffer> {
  let done = 0;
  while (done < part.length) {
    const { bytesRead } = await fh.read(into, done, part.length - done, part.offset + done);
    if (bytesRead === 0)
      throw new FerryError(
        'FERRY_UPLOAD_SOURCE_CHANGED',
        `Cannot read part ${part.number}: the file ended at ${part.offset + done} bytes`,
      );
    done += bytesRead;
  }
  return into.subarray(0, part.length);
}

/** The object's ETag when it already holds exactly the file (its multipart ETag), else undefined. */
async function completedBefore(
  s3: S3Client,
  options: UploadFileOptions,
  size: number,
  partSize: number,
): Promise<string | undefined> {
  const { bucket, key, signal } = options;
  let head: { ContentLength?: number | undefined; ETag?: string | undefined };
  try {
    head = await s3.send(
      new HeadObjectCommand({ Bucket: bucket, Key: key }),
      signal === undefined ? {} : { abortSignal: signal },
    );
  } catch (error) {
    if (notFound(error)) return undefined;
    throw awsFailure('FERRY_UPLOAD_FAILED', `check s3://${bucket}/${key}`, error, signal);
  }
  if (head.ContentLength !== size || head.ETag === undefined) return undefined;
  const want = await multipartEtag(options.path, partSize, signal);
  return unquote(head.ETag) === unquote(want) ? head.ETag : undefined;
}

/**
 * Uploads `path` to s3://bucket/key in parts (see the module comment);
 * resolves once CompleteMultipartUpload succeeded and HeadObject shows the
 * file's size.
 */
export async function uploadFile(s3: S3Client, options: UploadFileOptions): Promise<UploadResult> {
  const { bucket, key, path, signal } = options;
  const where = `s3://${bucket}/${key}`;
  const action = `upload ${path} to ${where}`;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw usage(`Cannot ${action}: the concurrency must be 1 to 64`, { concurrency });
  const opts = signal === undefined ? {} : { abortSignal: signal };
  const before = await stat(path).catch((error: unknown) => {
    throw new FerryError('FERRY_IO', `Cannot ${action}: ${(error as Error).message}`, {
      cause: error,
      details: { path },
    });
  });
  const size = before.size;
  if (!before.isFile() || size === 0)
    throw usage(`Cannot ${action}: it is not a non-empty regular file`, { path, size });
  const partSize = uploadPartSize(size, options.partSize);
  const parts = partsOf(size, partSize);
  throwIfAborted(signal, action);
  if (options.createBucket === true) await ensureBucket(s3, bucket, signal);

  // Resume the checkpointed upload when S3 still has it; else start one.
  let uploadId = (await options.checkpoint.load())?.uploadId;
  let held: Held | undefined;
  if (uploadId !== undefined) {
    held = await heldParts(s3, bucket, key, uploadId, signal);
    if (held === undefined) {
      // The upload is gone: completed by a run that crashed before it could say so?
      const done = await completedBefore(s3, options, size, partSize);
      if (done !== undefined)
        return {
          etag: done,
          bytes: size,
          partSize,
          partsSent: 0,
          partsReused: parts.length,
          uploadId,
        };
    }
  }
  if (held === undefined || uploadId === undefined) {
    try {
      const r = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'SHA256' }),
        opts,
      );
      if (r.UploadId === undefined) throw new Error('the answer has no UploadId');
      uploadId = r.UploadId;
    } catch (error) {
      throw awsFailure('FERRY_UPLOAD_FAILED', `start ${action}`, error, signal);
    }
    await options.checkpoint.save({ uploadId });
    held = new Map();
  }
  const id = uploadId;
  const holds = held;

  const fh = await open(path, 'r');
  const finished = new Map<number, { etag: string; sha256: string }>();
  let sentBytes = 0;
  let reusedBytes = 0;
  let partsSent = 0;
  let partsReused = 0;
  const report = (): void =>
    options.onProgress?.({
      totalBytes: size,
      sentBytes,
      reusedBytes,
      partsSent,
      partsReused,
      partsTotal: parts.length,
    });
  // One iterator, N workers: each takes the next part, reads it into its own
  // buffer and sends it unless S3 holds the same bytes already.
  const queue = parts[Symbol.iterator]();
  let failure: unknown;
  const worker = async (): Promise<void> => {
    const buffer = Buffer.allocUnsafe(Math.min(partSize, size));
    for (let next = queue.next(); !next.done; next = queue.next()) {
      if (failure !== undefined) return;
      const part = next.value;
      throwIfAborted(signal, action);
      const body = await readPart(fh, part, buffer);
      const md5 = createHash('md5').update(body).digest();
      const sha256 = createHash('sha256').update(body).digest('base64');
      const have = holds.get(part.number);
      // The part's SHA-256 when S3 lists it; else its ETag, the MD5 (not on SSE-KMS buckets).
      const same =
        have !== undefined &&
        have.size === part.length &&
        (have.sha256 !== undefined ? have.sha256 === sha256 : have.etag === md5.toString('hex'));
      if (same) {
        finished.set(part.number, { etag: `"${have.etag}"`, sha256 });
        reusedBytes += part.length;
        partsReused++;
        report();
        continue;
      }
      let etag: string | undefined;
      try {
        const r = await s3.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: id,
            PartNumber: part.number,
            Body: body,
            ContentLength: part.length,
            ContentMD5: md5.toString('base64'),
            ChecksumAlgorithm: 'SHA256',
            ChecksumSHA256: sha256,
          }),
          opts,
        );
        etag = r.ETag;
      } catch (error) {
        throw awsFailure(
          'FERRY_UPLOAD_FAILED',
          `upload part ${part.number} of ${parts.length} to ${where}`,
          error,
          signal,
        );
      }
      // S3 checked the part against its Content-MD5 and SHA-256; the ETag is only passed back.
      if (etag === undefined)
        throw new FerryError(
          'FERRY_UPLOAD_FAILED',
          `Cannot upload part ${part.number} to ${where}: S3 answered no ETag`,
          { details: { part: part.number } },
        );
      finished.set(part.number, { etag, sha256 });
      sentBytes += part.length;
      partsSent++;
      report();
    }
  };
  try {
    const workers = Array.from({ length: Math.min(concurrency, parts.length) }, () =>
      worker().catch((error: unknown) => {
        failure ??= error;
      }),
    );
    await Promise.all(workers);
    if (failure !== undefined) throw failure;
    const after = await fh.stat();
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs)
      throw new FerryError(
        'FERRY_UPLOAD_SOURCE_CHANGED',
        `Cannot ${action}: the file changed while it was sent`,
        { details: { path, sizeBefore: before.size, sizeAfter: after.size } },
      );
  } finally {
    await fh.close();
  }

  const completed: CompletedPart[] = parts.map((p) => ({
    PartNumber: p.number,
    ETag: finished.get(p.number)!.etag,
    ChecksumSHA256: finished.get(p.number)!.sha256,
  }));
  let etag: string;
  try {
    const r = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: id,
        MultipartUpload: { Parts: completed },
      }),
      opts,
    );
    if (r.ETag === undefined) throw new Error('the answer has no ETag');
    etag = r.ETag;
  } catch (error) {
    throw awsFailure('FERRY_UPLOAD_FAILED', `complete ${action}`, error, signal);
  }
  // S3 assembled the parts: a wrong length means it did not assemble what was sent.
  let stored: number | undefined;
  try {
    stored = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), opts))
      .ContentLength;
  } catch (error) {
    throw awsFailure('FERRY_UPLOAD_FAILED', `check ${where} after the upload`, error, signal);
  }
  if (stored !== size)
    throw new FerryError(
      'FERRY_UPLOAD_FAILED',
      `Cannot ${action}: S3 holds ${stored ?? 'no'} bytes after the upload, not ${size}`,
      { details: { size, stored: stored ?? null } },
    );
  return { etag, bytes: size, partSize, partsSent, partsReused, uploadId: id };
}

/**
 * The multipart ETag S3 gives `path` uploaded in parts of `partSize`
 * (MD5 of the parts' MD5s, dash, count), quotes included.
 */
export async function multipartEtag(
  path: string,
  partSize: number,
  signal?: AbortSignal,
): Promise<string> {
  const size = (await stat(path)).size;
  const parts = partsOf(size, uploadPartSize(size, partSize));
  const fh = await open(path, 'r');
  const whole = createHash('md5');
  const buffer = Buffer.allocUnsafe(Math.min(partSize, size));
  try {
    for (const p of parts) {
      throwIfAborted(signal, `hash ${path}`);
      whole.update(
        createHash('md5')
          .update(await readPart(fh, p, buffer))
          .digest(),
      );
    }
  } finally {
    await fh.close();
  }
  return `"${whole.digest('hex')}-${parts.length}"`;
}

/** AbortMultipartUpload; an upload already gone (completed or aborted) is fine. */
export async function abortUpload(
  s3: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  signal?: AbortSignal,
): Promise<void> {
  try {
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }),
      signal === undefined ? {} : { abortSignal: signal },
    );
  } catch (error) {
    if (awsCode(error) === 'NoSuchUpload' || notFound(error)) return;
    throw awsFailure('FERRY_UPLOAD_FAILED', `abort the upload to s3://${bucket}/${key}`, error);
  }
}

/** DeleteObject; an object already gone is fine (S3 answers 204 either way). */
export async function deleteObject(
  s3: S3Client,
  bucket: string,
  key: string,
  signal?: AbortSignal,
): Promise<void> {
  try {
    await s3.send(
      new DeleteObjectCommand({ Bucket: bucket, Key: key }),
      signal === undefined ? {} : { abortSignal: signal },
    );
  } catch (error) {
    if (notFound(error)) return;
    throw awsFailure('FERRY_UPLOAD_FAILED', `delete s3://${bucket}/${key}`, error);
  }
}
