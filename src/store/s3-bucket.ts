import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  ListPartsCommand,
  type ListPartsCommandOutput,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { FerryError } from '../errors/index.js';
import { isObjectId } from './object-store.js';

export interface S3Connection {
  /** s3://BUCKET[/PREFIX] */
  readonly url: string;
  /** An S3-compatible endpoint (Ceph RGW, Swift s3api, MinIO); AWS when absent. */
  readonly endpoint?: string;
  readonly region?: string;
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /**
   * A client the caller configured (its own endpoint, credentials, retry
   * policy or middleware); endpoint, region and credentials are then ignored.
   */
  readonly client?: S3Client;
}

/** One key of a listing. */
export interface ListedKey {
  readonly key: string;
  /** Milliseconds since the epoch, by the server's clock. */
  readonly modified: number;
  readonly size: number;
}

/** A multipart upload that was started and neither completed nor aborted. */
export interface OpenUpload {
  readonly key: string;
  readonly uploadId: string;
  /** Milliseconds since the epoch, by the server's clock. */
  readonly initiated: number;
}

/** Keys one DeleteObjects request may name (S3's limit). */
export const DELETE_BATCH = 1000;

export function notFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e.name === 'NotFound' ||
    e.name === 'NoSuchKey' ||
    e.name === 'NoSuchUpload' ||
    e.$metadata?.httpStatusCode === 404
  );
}

/** An SDK failure as a FerryError: aborts, refusals (401/403) and the rest (I/O). */
export function io(action: string, error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  if (e.name === 'AbortError')
    return new FerryError('FERRY_ABORTED', `Cannot ${action}: the operation was aborted`, {
      cause: error,
    });
  const status = e.$metadata?.httpStatusCode;
  return new FerryError(
    status === 401 || status === 403 ? 'FERRY_UNAUTHORIZED' : 'FERRY_IO',
    `Cannot ${action}: ${e.name ?? 'error'} ${e.message ?? ''}`.trim(),
    { details: { status: status ?? null }, cause: error },
  );
}

function sendOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}

/** How far the server's clock is ahead of ours, per client (learnt from Date headers). */
const clockOffsets = new WeakMap<S3Client, { ms: number }>();

/**
 * Two additions to every client a store uses. Content-MD5 on DeleteObjects:
 * the SDK now sends a CRC32 checksum there, and servers that follow the
 * original API (Swift's s3api, older Ceph) refuse the request without MD5.
 * And the server's Date header, so that ages of keys are measured by the
 * clock that stamped them.
 */
function instrument(client: S3Client): { ms: number } {
  const known = clockOffsets.get(client);
  if (known !== undefined) return known;
  const offset = { ms: 0 };
  clockOffsets.set(client, offset);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { body?: unknown; headers?: Record<string, string> };
      if (
        context.commandName === 'DeleteObjectsCommand' &&
        typeof request.body === 'string' &&
        request.headers !== undefined
      ) {
        request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
      }
      return next(args);
    },
    { step: 'build', name: 'ferryDeleteObjectsMd5', override: true },
  );
  const learn = (response: unknown): void => {
    const date = (response as { headers?: Record<string, string> } | undefined)?.headers?.date;
    const t = date === undefined ? Number.NaN : Date.parse(date);
    // The Date header has whole seconds: the offset errs towards an earlier server time.
    if (!Number.isNaN(t)) offset.ms = t - Date.now();
  };
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        const result = await next(args);
        learn(result.response);
        return result;
      } catch (error) {
        learn((error as { $response?: unknown }).$response);
        throw error;
      }
    },
    { step: 'deserialize', name: 'ferryServerClock', override: true },
  );
  return offset;
}

/**
 * A bucket and key prefix, with the requests a store makes of it: paginated
 * listings, small reads and writes, batched deletes and multipart uploads.
 * Every failure comes out as a FerryError.
 */
export class S3Bucket {
  readonly name: string;
  readonly client: S3Client;
  readonly bucket: string;
  /** '' or "PREFIX/". */
  readonly prefix: string;
  readonly #clock: { ms: number };
  /** Cleared when the server turns DeleteObjects down as not implemented. */
  #batchDelete = true;

  constructor(options: S3Connection) {
    const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(options.url);
    if (m === null)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot use store ${options.url}: give s3://BUCKET[/PREFIX]`,
      );
    this.bucket = m[1]!;
    const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
    this.prefix = prefix === '' ? '' : `${prefix}/`;
    this.name = options.url;
    this.client =
      options.client ??
      new S3Client({
        region: options.region ?? process.env.AWS_REGION ?? 'us-east-1',
        ...(options.endpoint === undefined
          ? {}
          : { endpoint: options.endpoint, forcePathStyle: true }),
        ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
        // Streamed bodies without aws-chunked encoding: what every S3-compatible server takes.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
    this.#clock = instrument(this.client);
  }

  /**
   * The server's time now, as its last Date header tells: whole seconds and
   * the response's transit make it lag, never lead.
   */
  serverNow(): number {
    return Date.now() + this.#clock.ms;
  }

  objectKey(id: string): string {
    if (!isObjectId(id))
      throw new FerryError(
        'FERRY_USAGE',
        'Cannot use an object id that is not a SHA-512 hex digest',
      );
    return `${this.prefix}objects/${id.slice(0, 2)}/${id.slice(2)}`;
  }

  /** The object id a key under objects/ names, or null. */
  objectIdOf(key: string): string | null {
    const base = `${this.prefix}objects/`;
    if (!key.startsWith(base)) return null;
    const rest = key.slice(base.length);
    const id = rest.slice(0, 2) + rest.slice(3);
    return rest[2] === '/' && isObjectId(id) ? id : null;
  }

  /** Every key under `prefix` (absolute, prefix included), a page at a time. */
  async *list(prefix: string, signal?: AbortSignal): AsyncGenerator<ListedKey> {
    let token: string | undefined;
    do {
      let r: ListObjectsV2CommandOutput;
      try {
        r = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
          sendOptions(signal),
        );
      } catch (error) {
        throw io(`list ${this.name}`, error);
      }
      for (const c of r.Contents ?? []) {
        if (c.Key === undefined) continue;
        yield { key: c.Key, modified: c.LastModified?.getTime() ?? 0, size: c.Size ?? 0 };
      }
      token = r.IsTruncated === false ? undefined : r.NextContinuationToken;
    } while (token !== undefined);
  }

  /** A key's bytes, up to `max` (FERRY_STORE_MANIFEST_INVALID beyond); null when it does not exist. */
  async getSmall(key: string, max: number, signal?: AbortSignal): Promise<Buffer | null> {
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key }),
        sendOptions(signal),
      );
      const bytes = await r.Body!.transformToByteArray();
      if (bytes.length > max)
        throw new FerryError(
          'FERRY_STORE_MANIFEST_INVALID',
          `Cannot read ${key}: over ${max} bytes`,
        );
      return Buffer.from(bytes);
    } catch (error) {
      if (notFound(error)) return null;
      throw io(`read ${key}`, error);
    }
  }

  /** Size of a key, or null when it does not exist. */
  async head(key: string, signal?: AbortSignal): Promise<{ size: number } | null> {
    try {
      const r = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key }),
        sendOptions(signal),
      );
      return { size: r.ContentLength ?? 0 };
    } catch (error) {
      if (notFound(error)) return null;
      throw io(`check ${key}`, error);
    }
  }

  async putSmall(
    key: string,
    body: Buffer,
    signal?: AbortSignal,
    contentType = 'application/json',
  ): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ContentType: contentType,
        }),
        sendOptions(signal),
      );
    } catch (error) {
      throw io(`write ${key}`, error);
    }
  }

  async deleteKey(key: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(
        new DeleteObjectCommand({ Bucket: this.bucket, Key: key }),
        sendOptions(signal),
      );
    } catch (error) {
      if (notFound(error)) return;
      throw io(`delete ${key}`, error);
    }
  }

  /**
   * Deletes keys, up to DELETE_BATCH per DeleteObjects request; a server that
   * answers NotImplemented gets one DeleteObject per key from then on. A key
   * already gone counts as deleted.
   */
  async deleteKeys(keys: readonly string[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      if (this.#batchDelete) {
        try {
          const r = await this.client.send(
            new DeleteObjectsCommand({
              Bucket: this.bucket,
              Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
            }),
            sendOptions(signal),
          );
          const failed = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
          if (failed.length > 0)
            throw new FerryError(
              'FERRY_IO',
              `Cannot delete ${failed.length} key(s) from ${this.name}: ${failed[0]!.Code ?? 'error'} ${failed[0]!.Message ?? ''} (${failed[0]!.Key ?? '?'})`.trim(),
            );
          continue;
        } catch (error) {
          const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
          if (e.name !== 'NotImplemented' && e.$metadata?.httpStatusCode !== 501)
            throw io(`delete keys from ${this.name}`, error);
          this.#batchDelete = false;
        }
      }
      for (const key of batch) await this.deleteKey(key, signal);
    }
  }

  /** Multipart uploads under this prefix that are still open, a page at a time. */
  async *openUploads(signal?: AbortSignal): AsyncGenerator<OpenUpload> {
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      let r: ListMultipartUploadsCommandOutput;
      try {
        r = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            ...(this.prefix === '' ? {} : { Prefix: this.prefix }),
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(idMarker === undefined ? {} : { UploadIdMarker: idMarker }),
          }),
          sendOptions(signal),
        );
      } catch (error) {
        throw io(`list the open uploads of ${this.name}`, error);
      }
      for (const u of r.Uploads ?? []) {
        if (u.Key === undefined || u.UploadId === undefined) continue;
        yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated?.getTime() ?? 0 };
      }
      if (r.IsTruncated !== true || r.NextKeyMarker === undefined) return;
      keyMarker = r.NextKeyMarker;
      idMarker = r.NextUploadIdMarker;
    }
  }

  /** Bytes an open upload holds in its parts so far. */
  async uploadedBytes(upload: OpenUpload, signal?: AbortSignal): Promise<number> {
    let total = 0;
    let marker: string | undefined;
    for (;;) {
      let r: ListPartsCommandOutput;
      try {
        r = await this.client.send(
          new ListPartsCommand({
            Bucket: this.bucket,
            Key: upload.key,
            UploadId: upload.uploadId,
            ...(marker === undefined ? {} : { PartNumberMarker: marker }),
          }),
          sendOptions(signal),
        );
      } catch (error) {
        if (notFound(error)) return total;
        throw io(`list the parts of an upload to ${upload.key}`, error);
      }
      for (const p of r.Parts ?? []) total += p.Size ?? 0;
      if (r.IsTruncated !== true || r.NextPartNumberMarker === undefined) return total;
      marker = r.NextPartNumberMarker;
    }
  }

  /** Aborts an open upload (already gone is fine). Runs without a signal unless given one. */
  async abortUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
        sendOptions(signal),
      );
    } catch (error) {
      if (notFound(error)) return;
      throw io(`abort an upload to ${key}`, error);
    }
  }
}
