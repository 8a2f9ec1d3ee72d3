import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { FerryError } from '../errors/index.js';
import { workerPool } from '../util/ordered-pool.js';
import { checkStreamName, type RevisionRecord } from './local-store.js';
import { isObjectId, verifiedObject } from './object-store.js';
import type { StoreBackend } from './store-backend.js';

export interface S3StoreOptions {
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
  /** HEAD requests in flight for a missing-objects query (default 16). */
  readonly concurrency?: number;
}

/** Largest object one PUT carries (S3's single-request limit). */
const MAX_SINGLE_PUT = 5 * 1024 ** 3;
/** Revision records read per stream (each a small JSON object). */
const MAX_RECORDS = 100_000;

function notFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

function io(action: string, error: unknown): FerryError {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return new FerryError(
    status === 401 || status === 403 ? 'FERRY_UNAUTHORIZED' : 'FERRY_IO',
    `Cannot ${action}: ${e.name ?? 'error'} ${e.message ?? ''}`.trim(),
    { details: { status: status ?? null }, cause: error },
  );
}

/**
 * A store in an S3 bucket, for replication and for teams that outgrow one
 * machine:
 *
 *   PREFIX/objects/ab/<hex>                            contents and manifests, by SHA-512
 *   PREFIX/streams/<name>/<created>-<id>.json          one key per revision record
 *   PREFIX/tmp/<random>                                uploads being verified
 *
 * Refs are append-only: a commit writes a new key and never rewrites one, so
 * concurrent writers cannot lose each other's revisions without conditional
 * writes (which Swift's s3api lacks). An object is uploaded under tmp/ while
 * it is hashed, and copied under its name only when the hash matches.
 */
export class S3Store implements StoreBackend {
  readonly name: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #concurrency: number;

  constructor(options: S3StoreOptions) {
    const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(options.url);
    if (m === null)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot use store ${options.url}: give s3://BUCKET[/PREFIX]`,
      );
    this.#bucket = m[1]!;
    const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
    this.#prefix = prefix === '' ? '' : `${prefix}/`;
    this.name = options.url;
    this.#concurrency = options.concurrency ?? 16;
    this.#client = new S3Client({
      region: options.region ?? process.env.AWS_REGION ?? 'us-east-1',
      ...(options.endpoint === undefined
        ? {}
        : { endpoint: options.endpoint, forcePathStyle: true }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      // Streamed bodies without aws-chunked encoding: what every S3-compatible server takes.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  #objectKey(id: string): string {
    if (!isObjectId(id))
      throw new FerryError(
        'FERRY_USAGE',
        'Cannot use an object id that is not a SHA-512 hex digest',
      );
    return `${this.#prefix}objects/${id.slice(0, 2)}/${id.slice(2)}`;
  }

  async #list(prefix: string, signal?: AbortSignal): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      let r: ListObjectsV2CommandOutput;
      try {
        r = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: prefix,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
          signal === undefined ? {} : { abortSignal: signal },
        );
      } catch (error) {
        throw io(`list ${this.name}`, error);
      }
      for (const c of r.Contents ?? []) if (c.Key !== undefined) keys.push(c.Key);
      token = r.NextContinuationToken;
      if (keys.length > MAX_RECORDS * 10)
        throw new FerryError(
          'FERRY_STORE_MANIFEST_INVALID',
          `Cannot list ${this.name}: too many keys`,
        );
    } while (token !== undefined);
    return keys;
  }

  async streams(signal?: AbortSignal): Promise<string[]> {
    const base = `${this.#prefix}streams/`;
    const names = new Set<string>();
    for (const key of await this.#list(base, signal)) {
      const rest = key.slice(base.length);
      const slash = rest.lastIndexOf('/');
      if (slash > 0) names.add(rest.slice(0, slash));
    }
    return [...names]
      .filter((n) => {
        try {
          checkStreamName(n);
          return true;
        } catch {
          return false;
        }
      })
      .sort();
  }

  async revisions(stream: string, signal?: AbortSignal): Promise<RevisionRecord[]> {
    checkStreamName(stream);
    const base = `${this.#prefix}streams/${stream}/`;
    const keys = (await this.#list(base, signal))
      .filter((k) => !k.slice(base.length).includes('/'))
      .sort();
    if (keys.length > MAX_RECORDS)
      throw new FerryError(
        'FERRY_STORE_MANIFEST_INVALID',
        `Cannot read stream ${stream}: over ${MAX_RECORDS} records`,
      );
    const records = new Array<RevisionRecord | null>(keys.length).fill(null);
    await workerPool(keys.keys(), this.#concurrency, async (i) => {
      const body = await this.#getSmall(keys[i]!, signal);
      try {
        const r = JSON.parse(body.toString('utf8')) as RevisionRecord;
        if (typeof r.id === 'string' && isObjectId(r.id)) records[i] = r;
      } catch {
        // A malformed record is not a revision.
      }
    });
    const out = records.filter((r): r is RevisionRecord => r !== null);
    // The same revision committed twice (two writers at once) counts once.
    const seen = new Set<string>();
    const unique: RevisionRecord[] = [];
    for (const r of out) {
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      unique.push(r);
    }
    return unique;
  }

  async #getSmall(key: string, signal?: AbortSignal): Promise<Buffer> {
    try {
      const r = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: key }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      const bytes = await r.Body!.transformToByteArray();
      if (bytes.length > 1024 * 1024)
        throw new FerryError(
          'FERRY_STORE_MANIFEST_INVALID',
          `Cannot read ${key}: a record over 1 MiB`,
        );
      return Buffer.from(bytes);
    } catch (error) {
      if (error instanceof FerryError) throw error;
      throw io(`read ${key}`, error);
    }
  }

  async #has(key: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key: key }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      return true;
    } catch (error) {
      if (notFound(error)) return false;
      throw io(`check ${key}`, error);
    }
  }

  async missing(ids: readonly string[], signal?: AbortSignal): Promise<string[]> {
    const absent = new Array<boolean>(ids.length).fill(false);
    await workerPool(ids.keys(), this.#concurrency, async (i) => {
      absent[i] = !(await this.#has(this.#objectKey(ids[i]!), signal));
    });
    return ids.filter((_, i) => absent[i]);
  }

  async *readObject(id: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
    let body: AsyncIterable<Uint8Array>;
    try {
      const r = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#objectKey(id) }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      body = r.Body as unknown as AsyncIterable<Uint8Array>;
    } catch (error) {
      if (notFound(error))
        throw new FerryError(
          'FERRY_STORE_NOT_FOUND',
          `Cannot read object ${id.slice(0, 16)}… from ${this.name}: no such object`,
        );
      throw io(`read object ${id.slice(0, 16)}…`, error);
    }
    yield* verifiedObject(id, body, this.name);
  }

  async putObject(
    id: string,
    size: number,
    data: AsyncIterable<Buffer>,
    signal?: AbortSignal,
  ): Promise<void> {
    const key = this.#objectKey(id);
    if (await this.#has(key, signal)) return;
    if (size > MAX_SINGLE_PUT) {
      throw new FerryError(
        'FERRY_NOT_CAPABLE',
        `Cannot store object ${id.slice(0, 16)}… in ${this.name}: over 5 GiB (multipart uploads come later)`,
      );
    }
    const tmp = `${this.#prefix}tmp/${randomBytes(12).toString('hex')}`;
    const hash = createHash('sha512');
    let n = 0;
    const hashed = Readable.from(
      (async function* () {
        for await (const c of data) {
          hash.update(c);
          n += c.length;
          yield c;
        }
      })(),
    );
    const opts = signal === undefined ? {} : { abortSignal: signal };
    try {
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.#bucket, Key: tmp, Body: hashed, ContentLength: size }),
        opts,
      );
      const actual = hash.digest('hex');
      if (actual !== id || n !== size) {
        throw new FerryError(
          'FERRY_STORE_OBJECT_CORRUPT',
          `Cannot store object ${id.slice(0, 16)}…: the bytes hash to ${actual.slice(0, 16)}…`,
        );
      }
      await this.#client.send(
        new CopyObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          CopySource: `${this.#bucket}/${tmp}`,
        }),
        opts,
      );
    } catch (error) {
      if (error instanceof FerryError) throw error;
      throw io(`store object ${id.slice(0, 16)}…`, error);
    } finally {
      await this.#client
        .send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: tmp }))
        .catch(() => {});
    }
  }

  async commit(stream: string, record: RevisionRecord, signal?: AbortSignal): Promise<void> {
    checkStreamName(stream);
    if (!(await this.#has(this.#objectKey(record.id), signal))) {
      throw new FerryError(
        'FERRY_STORE_NOT_FOUND',
        `Cannot commit ${stream}@${record.id.slice(0, 16)} to ${this.name}: its manifest is missing`,
      );
    }
    const existing = await this.revisions(stream, signal);
    if (existing.at(-1)?.id === record.id) return;
    const created =
      typeof record.created === 'string' && !Number.isNaN(Date.parse(record.created))
        ? new Date(record.created).toISOString()
        : new Date().toISOString();
    const key = `${this.#prefix}streams/${stream}/${created.replace(/[:.]/g, '')}-${record.id.slice(0, 32)}.json`;
    const body = Buffer.from(`${JSON.stringify({ ...record, created })}\n`);
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ContentType: 'application/json',
        }),
        signal === undefined ? {} : { abortSignal: signal },
      );
    } catch (error) {
      throw io(`commit ${stream} to ${this.name}`, error);
    }
  }
}
