import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { CopyObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { FerryError } from '../errors/index.js';
import { workerPool } from '../util/ordered-pool.js';
import {
  checkStreamName,
  type GcOptions,
  type GcResult,
  type RevisionRecord,
} from './local-store.js';
import { isObjectId, verifiedObject } from './object-store.js';
import { io, notFound, S3Bucket, type S3Connection } from './s3-bucket.js';
import { collectS3Garbage, type RecordKey } from './s3-gc.js';
import { type MultipartSettings, multipartSettings, uploadInParts } from './s3-multipart.js';
import { sweptIds } from './s3-sweeps.js';
import type { StoreBackend } from './store-backend.js';
import { readManifest } from './store-reader.js';

export interface S3StoreOptions extends S3Connection {
  /** HEAD requests in flight for a missing-objects query (default 16). */
  readonly concurrency?: number;
  /** When objects go up in parts, and in what parts (see s3-multipart.ts). */
  readonly multipart?: Partial<MultipartSettings>;
}

/** Revision records read per stream (each a small JSON object). */
const MAX_RECORDS = 100_000;
/** Keys one listing may return before the store is taken as broken. */
const MAX_KEYS = MAX_RECORDS * 10;
/** The largest revision record or pin read. */
const MAX_RECORD_BYTES = 1024 * 1024;

/**
 * A store in an S3 bucket, for replication and for teams that outgrow one
 * machine:
 *
 *   PREFIX/objects/ab/<hex>                      contents and manifests, by SHA-512
 *   PREFIX/streams/<name>/<created>-<id>.json    one key per revision record
 *   PREFIX/streams/<name>/<created>-<id>.pending a commit on its way (readers skip it)
 *   PREFIX/pins/<revision id>                    revisions GC keeps (published images)
 *   PREFIX/tmp/<random>                          single-request uploads being verified
 *   PREFIX/gc/                                   what sweeping GCs announce (s3-sweeps.ts)
 *
 * Refs are append-only: a commit writes a new key and never rewrites one, so
 * concurrent writers cannot lose each other's revisions without conditional
 * writes (which Swift's s3api lacks). An object up to the multipart threshold
 * is uploaded under tmp/ while it is hashed, and copied under its name only
 * when the hash matches; a larger one goes up in parts under its name and is
 * completed only when the hash matches (s3-multipart.ts).
 */
export class S3Store implements StoreBackend {
  readonly name: string;
  readonly #bucket: S3Bucket;
  readonly #concurrency: number;
  readonly #multipart: MultipartSettings;

  constructor(options: S3StoreOptions) {
    this.#bucket = new S3Bucket(options);
    this.name = options.url;
    this.#concurrency = options.concurrency ?? 16;
    this.#multipart = multipartSettings(options.multipart);
  }

  async #keys(prefix: string, signal?: AbortSignal): Promise<string[]> {
    const keys: string[] = [];
    for await (const k of this.#bucket.list(prefix, signal)) {
      keys.push(k.key);
      if (keys.length > MAX_KEYS)
        throw new FerryError(
          'FERRY_STORE_MANIFEST_INVALID',
          `Cannot list ${this.name}: too many keys`,
        );
    }
    return keys;
  }

  /** Every record and pending commit under streams/, in key order. */
  async #recordKeys(signal?: AbortSignal): Promise<RecordKey[]> {
    const base = `${this.#bucket.prefix}streams/`;
    const out: RecordKey[] = [];
    for await (const k of this.#bucket.list(base, signal)) {
      const rest = k.key.slice(base.length);
      const slash = rest.lastIndexOf('/');
      const file = rest.slice(slash + 1);
      const pending = file.endsWith('.pending');
      if (slash <= 0 || !(pending || file.endsWith('.json'))) continue;
      const stream = rest.slice(0, slash);
      try {
        checkStreamName(stream);
      } catch {
        continue;
      }
      out.push({ key: k.key, stream, pending, modified: k.modified });
      if (out.length > MAX_KEYS)
        throw new FerryError(
          'FERRY_STORE_MANIFEST_INVALID',
          `Cannot list ${this.name}: too many records`,
        );
    }
    return out;
  }

  /** A record's contents; null when malformed, undefined when the key is gone. */
  async #readRecord(key: string, signal?: AbortSignal): Promise<RevisionRecord | null | undefined> {
    const body = await this.#bucket.getSmall(key, MAX_RECORD_BYTES, signal);
    if (body === null) return undefined;
    try {
      const r = JSON.parse(body.toString('utf8')) as RevisionRecord;
      return typeof r.id === 'string' && isObjectId(r.id) ? r : null;
    } catch {
      return null;
    }
  }

  async streams(signal?: AbortSignal): Promise<string[]> {
    const names = new Set<string>();
    for (const r of await this.#recordKeys(signal)) if (!r.pending) names.add(r.stream);
    return [...names].sort();
  }

  async revisions(stream: string, signal?: AbortSignal): Promise<RevisionRecord[]> {
    checkStreamName(stream);
    const base = `${this.#bucket.prefix}streams/${stream}/`;
    const keys = (await this.#keys(base, signal))
      .filter((k) => !k.slice(base.length).includes('/') && k.endsWith('.json'))
      .sort();
    if (keys.length > MAX_RECORDS)
      throw new FerryError(
        'FERRY_STORE_MANIFEST_INVALID',
        `Cannot read stream ${stream}: over ${MAX_RECORDS} records`,
      );
    const records = new Array<RevisionRecord | null | undefined>(keys.length).fill(null);
    await workerPool(keys.keys(), this.#concurrency, async (i) => {
      // A record a GC deleted since the listing is no revision any more.
      records[i] = await this.#readRecord(keys[i]!, signal);
    });
    // The same revision committed twice (two writers at once) counts once, at its first record.
    const seen = new Set<string>();
    const unique: RevisionRecord[] = [];
    for (const r of records) {
      if (r === null || r === undefined || seen.has(r.id)) continue;
      seen.add(r.id);
      unique.push(r);
    }
    return unique;
  }

  async missing(ids: readonly string[], signal?: AbortSignal): Promise<string[]> {
    const absent = new Array<boolean>(ids.length).fill(false);
    await workerPool(ids.keys(), this.#concurrency, async (i) => {
      absent[i] = (await this.#bucket.head(this.#bucket.objectKey(ids[i]!), signal)) === null;
    });
    return ids.filter((_, i) => absent[i]);
  }

  async *readObject(id: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
    let body: AsyncIterable<Uint8Array>;
    try {
      const r = await this.#bucket.client.send(
        new GetObjectCommand({ Bucket: this.#bucket.bucket, Key: this.#bucket.objectKey(id) }),
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

  /** A revision's manifest id and the objects its entries name, from its verified, canonical manifest. */
  async #references(revision: string, signal?: AbortSignal): Promise<string[]> {
    const manifest = await readManifest((id, sig) => this.readObject(id, sig), revision, signal);
    const out = [revision];
    for (const e of manifest.entries) if (e.hash !== undefined) out.push(e.hash);
    return out;
  }

  /**
   * After writing a key that makes `revision` reachable (a pending commit, a
   * pin): fails when a GC sweep that may not have seen the key removed any
   * object the revision names (s3-sweeps.ts). Cheap when no GC swept lately.
   */
  async #confirmWhole(revision: string, action: string, signal?: AbortSignal): Promise<void> {
    const swept = await sweptIds(this.#bucket, signal);
    if (swept.size === 0) return;
    const atRisk = (await this.#references(revision, signal)).filter((id) => swept.has(id));
    const lost = await this.missing(atRisk, signal);
    if (lost.length > 0)
      throw new FerryError(
        'FERRY_STORE_NOT_FOUND',
        `Cannot ${action}: a gc removed ${lost.length} of its objects meanwhile`,
        {
          details: { revision, lost: lost.length },
          hint: 'Run it again: replication uploads whatever the bucket lacks',
        },
      );
  }

  async putObject(
    id: string,
    size: number,
    data: AsyncIterable<Buffer>,
    signal?: AbortSignal,
  ): Promise<void> {
    const key = this.#bucket.objectKey(id);
    if ((await this.#bucket.head(key, signal)) !== null) return;
    if (size > this.#multipart.threshold) {
      await uploadInParts(this.#bucket, key, id, size, data, this.#multipart, signal);
      return;
    }
    const tmp = `${this.#bucket.prefix}tmp/${randomBytes(12).toString('hex')}`;
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
    const { client, bucket } = this.#bucket;
    try {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: tmp, Body: hashed, ContentLength: size }),
        opts,
      );
      const actual = hash.digest('hex');
      if (actual !== id || n !== size) {
        throw new FerryError(
          'FERRY_STORE_OBJECT_CORRUPT',
          `Cannot store object ${id.slice(0, 16)}…: the bytes hash to ${actual.slice(0, 16)}…`,
        );
      }
      await client.send(
        new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: `${bucket}/${tmp}` }),
        opts,
      );
    } catch (error) {
      throw io(`store object ${id.slice(0, 16)}…`, error);
    } finally {
      await this.#bucket.deleteKey(tmp).catch(() => {});
    }
  }

  /**
   * Appends a record in three writes: a pending key (GC keeps what it names,
   * readers do not see it), the check that no sweep took any of the
   * revision's objects meanwhile, then the record; the pending key goes last.
   * Killed midway, it leaves at most a pending key, which GC removes a day later.
   */
  async commit(stream: string, record: RevisionRecord, signal?: AbortSignal): Promise<void> {
    checkStreamName(stream);
    const label = `commit ${stream}@${record.id.slice(0, 16)} to ${this.name}`;
    if ((await this.#bucket.head(this.#bucket.objectKey(record.id), signal)) === null) {
      throw new FerryError('FERRY_STORE_NOT_FOUND', `Cannot ${label}: its manifest is missing`);
    }
    const existing = await this.revisions(stream, signal);
    if (existing.at(-1)?.id === record.id) return;
    const created =
      typeof record.created === 'string' && !Number.isNaN(Date.parse(record.created))
        ? new Date(record.created).toISOString()
        : new Date().toISOString();
    const base = `${this.#bucket.prefix}streams/${stream}/${created.replace(/[:.]/g, '')}-${record.id.slice(0, 32)}`;
    const body = Buffer.from(`${JSON.stringify({ ...record, created })}\n`);
    await this.#bucket.putSmall(`${base}.pending`, body, signal);
    try {
      await this.#confirmWhole(record.id, label, signal);
      await this.#bucket.putSmall(`${base}.json`, body, signal);
    } finally {
      await this.#bucket.deleteKey(`${base}.pending`).catch(() => {});
    }
  }

  /**
   * Removes a revision from a stream: every record of it (two writers may
   * have committed it twice) is deleted; its objects go at the next GC.
   * Records are keys of their own, so other writers are never disturbed.
   */
  async removeRevision(stream: string, id: string, signal?: AbortSignal): Promise<void> {
    checkStreamName(stream);
    const base = `${this.#bucket.prefix}streams/${stream}/`;
    const keys = (await this.#keys(base, signal)).filter(
      (k) => !k.slice(base.length).includes('/') && k.endsWith('.json'),
    );
    const mine: string[] = [];
    await workerPool(keys, this.#concurrency, async (k) => {
      const r = await this.#readRecord(k, signal);
      if (r?.id === id) mine.push(k);
    });
    if (mine.length === 0)
      throw new FerryError(
        'FERRY_STORE_NOT_FOUND',
        `Cannot remove ${stream}@${id.slice(0, 16)} from ${this.name}: no such revision`,
      );
    await this.#bucket.deleteKeys(mine.sort(), signal);
  }

  /** Marks a revision as in use outside the store (a published image): GC never removes it. */
  async pin(id: string, reason: string, signal?: AbortSignal): Promise<void> {
    if ((await this.#bucket.head(this.#bucket.objectKey(id), signal)) === null)
      throw new FerryError(
        'FERRY_STORE_NOT_FOUND',
        `Cannot pin ${id.slice(0, 16)}… in ${this.name}: no such revision`,
      );
    const key = `${this.#bucket.prefix}pins/${id}`;
    await this.#bucket.putSmall(key, Buffer.from(`${reason}\n`), signal, 'text/plain');
    try {
      await this.#confirmWhole(id, `pin ${id.slice(0, 16)}… in ${this.name}`, signal);
    } catch (error) {
      await this.#bucket.deleteKey(key).catch(() => {});
      throw error;
    }
  }

  async unpin(id: string, signal?: AbortSignal): Promise<void> {
    if (!isObjectId(id))
      throw new FerryError('FERRY_USAGE', 'Cannot unpin: give a full revision id');
    await this.#bucket.deleteKey(`${this.#bucket.prefix}pins/${id}`, signal);
  }

  async pins(signal?: AbortSignal): Promise<string[]> {
    const base = `${this.#bucket.prefix}pins/`;
    return (await this.#keys(base, signal))
      .map((k) => k.slice(base.length))
      .filter(isObjectId)
      .sort();
  }

  /**
   * Drops revisions beyond `keep` per stream (never a pinned one) and the
   * objects nothing kept names, as LocalStore.gc does; safe beside writers
   * and when killed (see s3-gc.ts).
   */
  gc(options: GcOptions = {}): Promise<GcResult> {
    return collectS3Garbage(
      {
        bucket: this.#bucket,
        recordKeys: (signal) => this.#recordKeys(signal),
        recordId: async (key, signal) => {
          const r = await this.#readRecord(key, signal);
          return r === undefined || r === null ? r : r.id;
        },
        pins: (signal) => this.pins(signal),
        references: (id, signal) => this.#references(id, signal),
      },
      options,
    );
  }
}
