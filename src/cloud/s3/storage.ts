/**
 * S3's data on disk, under DATA/state/s3:
 *
 *   lock                                  held while a server owns the directory
 *   secret                                key of continuation tokens
 *   tmp/                                  files being written (emptied at open)
 *   buckets/<name>.json                   a bucket: owner, region, id
 *   data/<id>/objects/<hh>/<sha256(key)>.json   an object's record
 *   data/<id>/blobs/<random>              an object's or a part's bytes
 *   data/<id>/uploads/<uploadId>/upload.json, part-<n>.json   a multipart upload
 *
 * No file name comes from a key: keys are hashed, bytes live under random
 * names, bucket names are validated before they name a file. A body is
 * received into tmp/, fsynced, renamed under blobs/, and only then does its
 * record appear (written atomically): the record is the commit point, so a
 * kill -9 leaves the old object or the new one, never a partial one. Blobs
 * no record names (a crash between the two renames, or an overwritten
 * object's old bytes) are removed when the bucket is first loaded.
 *
 * A bucket's records are loaded into memory on first use (its keys kept
 * sorted for listing); changes to one bucket are committed one at a time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, type FileHandle, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AwsError } from '../aws-error.js';
import { isBucketName } from './bucket-name.js';
import { type BodyDigests, BodyHasher, type ChecksumAlgorithm } from './checksums.js';
import { type HeldLock, holdDirLock } from './dir-lock.js';
import {
  randomId,
  removeQuietly,
  renameDurably,
  syncDir,
  writeFileDurably,
  writeJsonDurably,
} from './durable-file.js';
import { compareKeys, insertKey, removeKey } from './key-order.js';
import { MAX_BUCKETS_PER_ACCOUNT } from './limits.js';
import {
  type BucketRecord,
  type ObjectRecord,
  type PartRecord,
  parseBucket,
  parseObject,
  parsePart,
  parseUpload,
  type UploadRecord,
} from './records.js';
import { accessDenied, noSuchBucket, noSuchUpload, S3Error } from './s3-error.js';

/** An object as a local file, for the endpoint's other components (import tasks, bundles). */
export interface S3ObjectFile {
  readonly path: string;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: number;
}

/** A body received into tmp/, not yet part of anything. */
export interface ReceivedBody extends BodyDigests {
  readonly tmp: string;
}

export interface Upload {
  readonly record: UploadRecord;
  readonly parts: Map<number, PartRecord>;
  completing: boolean;
}

export interface Bucket {
  record: BucketRecord;
  readonly objects: Map<string, ObjectRecord>;
  /** The object keys, sorted as S3 lists them. */
  readonly keys: string[];
  readonly uploads: Map<string, Upload>;
  deleted: boolean;
}

interface BucketSlot {
  record: BucketRecord;
  loaded?: Promise<Bucket> | undefined;
  queue: Promise<unknown>;
}

/** The largest JSON record read back (a record with 2 KiB of metadata is far smaller). */
const MAX_RECORD_BYTES = 64 * 1024;

async function readJson(path: string): Promise<unknown> {
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (text.length > MAX_RECORD_BYTES) return undefined;
  try {
    return JSON.parse(text.toString('utf8'));
  } catch {
    return undefined;
  }
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

export function keyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export class S3Storage {
  readonly root: string;
  readonly tokenKey: Buffer;
  readonly now: () => number;
  private readonly lock: HeldLock;
  private readonly buckets = new Map<string, BucketSlot>();
  private bucketQueue: Promise<unknown> = Promise.resolve();

  private constructor(root: string, tokenKey: Buffer, now: () => number, lock: HeldLock) {
    this.root = root;
    this.tokenKey = tokenKey;
    this.now = now;
    this.lock = lock;
  }

  /** Opens (creating) the directory, holding its lock until close(). */
  static async open(root: string, options: { now?: () => number } = {}): Promise<S3Storage> {
    await mkdir(root, { recursive: true });
    const lock = await holdDirLock(join(root, 'lock'));
    try {
      await rm(join(root, 'tmp'), { recursive: true, force: true });
      await mkdir(join(root, 'tmp'), { recursive: true });
      await mkdir(join(root, 'buckets'), { recursive: true });
      await mkdir(join(root, 'data'), { recursive: true });
      const secretPath = join(root, 'secret');
      let secret = await readFile(secretPath).catch(() => undefined);
      if (secret === undefined || secret.length !== 32) {
        await writeFileDurably(join(root, 'tmp'), secretPath, randomBytes(32));
        await chmod(secretPath, 0o600);
        secret = await readFile(secretPath);
      }
      const storage = new S3Storage(root, secret, options.now ?? Date.now, lock);
      await storage.loadBuckets();
      return storage;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.bucketQueue.catch(() => {});
    for (const slot of this.buckets.values()) await slot.queue.catch(() => {});
    await this.lock.release();
  }

  private get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  private bucketFile(name: string): string {
    return join(this.root, 'buckets', `${name}.json`);
  }

  private dataDir(record: BucketRecord): string {
    return join(this.root, 'data', record.id);
  }

  blobPath(bucket: Bucket, blob: string): string {
    return join(this.dataDir(bucket.record), 'blobs', blob);
  }

  private recordPath(record: BucketRecord, key: string): string {
    const h = keyHash(key);
    return join(this.dataDir(record), 'objects', h.slice(0, 2), `${h}.json`);
  }

  private uploadDir(record: BucketRecord, uploadId: string): string {
    return join(this.dataDir(record), 'uploads', uploadId);
  }

  /** Reads buckets/, and removes the data of buckets that no longer exist (a crash mid-delete). */
  private async loadBuckets(): Promise<void> {
    for (const file of await list(join(this.root, 'buckets'))) {
      if (!file.endsWith('.json')) {
        await removeQuietly(join(this.root, 'buckets', file));
        continue;
      }
      const record = parseBucket(await readJson(join(this.root, 'buckets', file)));
      if (record === undefined || `${record.name}.json` !== file || !isBucketName(record.name))
        continue;
      this.buckets.set(record.name, { record, queue: Promise.resolve() });
    }
    const live = new Set([...this.buckets.values()].map((s) => s.record.id));
    for (const id of await list(join(this.root, 'data')))
      if (!live.has(id)) await rm(join(this.root, 'data', id), { recursive: true, force: true });
  }

  /** Runs `fn` after every earlier change to the bucket, and before every later one. */
  private serialize<T>(slot: BucketSlot, fn: () => Promise<T>): Promise<T> {
    const next = slot.queue.then(fn, fn);
    slot.queue = next.catch(() => {});
    return next;
  }

  private serializeBuckets<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.bucketQueue.then(fn, fn);
    this.bucketQueue = next.catch(() => {});
    return next;
  }

  // ---- buckets -------------------------------------------------------------

  /** Every bucket of `account`, by name. */
  listBuckets(account: string): BucketRecord[] {
    return [...this.buckets.values()]
      .map((s) => s.record)
      .filter((r) => r.account === account)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The bucket record whoever owns it (for errors that must tell "not yours" from "absent"). */
  findBucket(name: string): BucketRecord | undefined {
    return this.buckets.get(name)?.record;
  }

  createBucket(account: string, name: string, region: string): Promise<BucketRecord> {
    return this.serializeBuckets(async () => {
      const existing = this.buckets.get(name);
      if (existing !== undefined) {
        if (existing.record.account === account)
          throw new S3Error(
            409,
            'BucketAlreadyOwnedByYou',
            'Your previous request to create the named bucket succeeded and you already own it.',
            { BucketName: name },
          );
        throw new S3Error(
          409,
          'BucketAlreadyExists',
          'The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.',
          { BucketName: name },
        );
      }
      if (this.listBuckets(account).length >= MAX_BUCKETS_PER_ACCOUNT)
        throw new S3Error(
          400,
          'TooManyBuckets',
          'You have attempted to create more buckets than allowed',
        );
      const record: BucketRecord = {
        name,
        id: randomId(12),
        account,
        region,
        created: this.now(),
      };
      await mkdir(this.dataDir(record), { recursive: true });
      await writeJsonDurably(this.tmpDir, this.bucketFile(name), record);
      this.buckets.set(name, { record, queue: Promise.resolve() });
      return record;
    });
  }

  deleteBucket(account: string, name: string): Promise<void> {
    return this.serializeBuckets(async () => {
      const slot = this.slot(account, name);
      await this.serialize(slot, async () => {
        const bucket = await this.loaded(slot);
        if (bucket.objects.size > 0 || bucket.uploads.size > 0)
          throw new S3Error(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', {
            BucketName: name,
          });
        await removeQuietly(this.bucketFile(name));
        await syncDir(join(this.root, 'buckets'));
        bucket.deleted = true;
        this.buckets.delete(name);
      });
      await rm(this.dataDir(slot.record), { recursive: true, force: true });
    });
  }

  private slot(account: string, name: string): BucketSlot {
    const slot = this.buckets.get(name);
    if (slot === undefined) throw noSuchBucket(name);
    if (slot.record.account !== account) throw accessDenied();
    return slot;
  }

  /** The bucket of `account` named `name`, loaded (NoSuchBucket, or AccessDenied for another account's). */
  bucket(account: string, name: string): Promise<Bucket> {
    return this.loaded(this.slot(account, name));
  }

  private loaded(slot: BucketSlot): Promise<Bucket> {
    slot.loaded ??= this.loadBucket(slot.record).catch((error: unknown) => {
      slot.loaded = undefined;
      throw error;
    });
    return slot.loaded;
  }

  private async loadBucket(record: BucketRecord): Promise<Bucket> {
    const bucket: Bucket = {
      record,
      objects: new Map(),
      keys: [],
      uploads: new Map(),
      deleted: false,
    };
    const dir = this.dataDir(record);
    const referenced = new Set<string>();
    for (const shard of await list(join(dir, 'objects'))) {
      for (const file of await list(join(dir, 'objects', shard))) {
        const path = join(dir, 'objects', shard, file);
        const object = parseObject(await readJson(path));
        if (object === undefined || `${keyHash(object.key)}.json` !== file) {
          // A temporary name or a foreign file: never a record.
          continue;
        }
        bucket.objects.set(object.key, object);
        referenced.add(object.blob);
      }
    }
    bucket.keys.push(...bucket.objects.keys());
    bucket.keys.sort(compareKeys);
    for (const id of await list(join(dir, 'uploads'))) {
      const udir = join(dir, 'uploads', id);
      const upload = parseUpload(await readJson(join(udir, 'upload.json')));
      if (upload === undefined || upload.id !== id) {
        // Created or aborted halfway: its parts are unreachable.
        await rm(udir, { recursive: true, force: true });
        continue;
      }
      const parts = new Map<number, PartRecord>();
      for (const file of await list(udir)) {
        const m = /^part-(\d{1,5})\.json$/.exec(file);
        if (m === null) continue;
        const part = parsePart(await readJson(join(udir, file)));
        if (part === undefined || part.number !== Number(m[1])) continue;
        parts.set(part.number, part);
        referenced.add(part.blob);
      }
      bucket.uploads.set(id, { record: upload, parts, completing: false });
    }
    await mkdir(join(dir, 'blobs'), { recursive: true });
    for (const blob of await list(join(dir, 'blobs')))
      if (!referenced.has(blob)) await removeQuietly(join(dir, 'blobs', blob));
    return bucket;
  }

  /** Runs a change of `bucket` in its turn (refusing it if the bucket was deleted meanwhile). */
  private change<T>(bucket: Bucket, fn: () => Promise<T>): Promise<T> {
    const slot = this.buckets.get(bucket.record.name);
    if (slot === undefined || bucket.deleted || slot.record.id !== bucket.record.id)
      return Promise.reject(noSuchBucket(bucket.record.name));
    return this.serialize(slot, async () => {
      if (bucket.deleted) throw noSuchBucket(bucket.record.name);
      return fn();
    });
  }

  // ---- receiving bodies ----------------------------------------------------

  /**
   * Streams `source` into a new file under tmp/ (fsynced), hashing as it
   * goes, at most `limit` bytes (EntityTooLarge beyond). The caller commits
   * the file or discards it; a failed stream removes it.
   */
  async receive(
    source: AsyncIterable<Buffer>,
    algorithms: Iterable<ChecksumAlgorithm>,
    limit: number,
  ): Promise<ReceivedBody> {
    const tmp = join(this.tmpDir, `${randomId(12)}.body`);
    const hasher = new BodyHasher(algorithms);
    const fh = await open(tmp, 'wx', 0o644);
    try {
      let size = 0;
      for await (const chunk of source) {
        size += chunk.length;
        if (size > limit)
          throw new S3Error(
            400,
            'EntityTooLarge',
            'Your proposed upload exceeds the maximum allowed size',
            { MaxSizeAllowed: String(limit) },
          );
        hasher.update(chunk);
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
          off += bytesWritten;
        }
      }
      await fh.sync();
      await fh.close();
      return { tmp, ...hasher.finish() };
    } catch (error) {
      await fh.close().catch(() => {});
      await removeQuietly(tmp);
      throw error;
    }
  }

  /** Concatenates files into a new temporary one (a completed multipart upload's bytes). */
  async concatenate(paths: readonly string[]): Promise<string> {
    const tmp = join(this.tmpDir, `${randomId(12)}.body`);
    const out = await open(tmp, 'wx', 0o644);
    const buf = Buffer.allocUnsafe(1024 * 1024);
    try {
      for (const path of paths) {
        const input = await open(path, 'r');
        try {
          for (;;) {
            const { bytesRead } = await input.read(buf, 0, buf.length, null);
            if (bytesRead === 0) break;
            let off = 0;
            while (off < bytesRead) {
              const { bytesWritten } = await out.write(buf, off, bytesRead - off);
              off += bytesWritten;
            }
          }
        } finally {
          await input.close();
        }
      }
      await out.sync();
      await out.close();
      return tmp;
    } catch (error) {
      await out.close().catch(() => {});
      await removeQuietly(tmp);
      throw error;
    }
  }

  /**
   * Bytes `start` to `end` (inclusive) of an open object, copied under tmp/
   * with their digests (CopyObject, UploadPartCopy). Reading the descriptor
   * rather than the path copies the version that was opened.
   */
  async copyRange(
    fd: FileHandle,
    start: number,
    end: number,
    algorithms: Iterable<ChecksumAlgorithm>,
  ): Promise<ReceivedBody> {
    async function* chunks(): AsyncGenerator<Buffer> {
      let position = start;
      while (position <= end) {
        const want = Math.min(1024 * 1024, end - position + 1);
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await fd.read(buf, 0, want, position);
        if (bytesRead === 0)
          throw new AwsError(500, 'InternalError', 'The source object is shorter than its record.');
        position += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    }
    return this.receive(chunks(), algorithms, Number.MAX_SAFE_INTEGER);
  }

  discard(tmp: string): Promise<void> {
    return removeQuietly(tmp);
  }

  // ---- objects ---------------------------------------------------------------

  /**
   * Makes `tmp` the bytes of `record.key` (record.blob is assigned here):
   * the blob is renamed into place, then the record written, then the
   * replaced object's bytes removed. `check` runs in the bucket's turn,
   * just before, with the current object (conditional writes).
   */
  async commitObject(
    bucket: Bucket,
    tmp: string,
    fields: Omit<ObjectRecord, 'blob'>,
    check?: (current: ObjectRecord | undefined) => void,
  ): Promise<ObjectRecord> {
    try {
      return await this.change(bucket, async () => {
        check?.(bucket.objects.get(fields.key));
        const record: ObjectRecord = { ...fields, blob: randomId(16) };
        await renameDurably(tmp, this.blobPath(bucket, record.blob));
        try {
          await writeJsonDurably(this.tmpDir, this.recordPath(bucket.record, record.key), record);
        } catch (error) {
          await removeQuietly(this.blobPath(bucket, record.blob));
          throw error;
        }
        const old = bucket.objects.get(record.key);
        bucket.objects.set(record.key, record);
        insertKey(bucket.keys, record.key);
        if (old !== undefined) await removeQuietly(this.blobPath(bucket, old.blob));
        return record;
      });
    } finally {
      await removeQuietly(tmp);
    }
  }

  /** Removes `key` (no error when absent, as S3 answers). */
  deleteObject(bucket: Bucket, key: string): Promise<boolean> {
    return this.change(bucket, async () => {
      const old = bucket.objects.get(key);
      if (old === undefined) return false;
      await removeQuietly(this.recordPath(bucket.record, key));
      await syncDir(join(this.recordPath(bucket.record, key), '..'));
      bucket.objects.delete(key);
      removeKey(bucket.keys, key);
      await removeQuietly(this.blobPath(bucket, old.blob));
      return true;
    });
  }

  /**
   * Opens the object's bytes for reading. The descriptor stays valid if the
   * object is replaced meanwhile (its old file is unlinked, not overwritten).
   */
  async openObject(
    bucket: Bucket,
    key: string,
  ): Promise<{ record: ObjectRecord; fd: FileHandle } | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const record = bucket.objects.get(key);
      if (record === undefined) return undefined;
      try {
        return { record, fd: await open(this.blobPath(bucket, record.blob), 'r') };
      } catch (error) {
        // Replaced between the lookup and the open: look again.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    throw new AwsError(503, 'SlowDown', 'Please reduce your request rate.');
  }

  /**
   * The object at `bucket`/`key` as a local file, for the endpoint's other
   * components: undefined when the bucket or the key does not exist, an
   * AwsError AccessDenied when the bucket belongs to another account. The
   * path stays valid until the object is overwritten or deleted.
   */
  async objectFile(
    account: string,
    bucket: string,
    key: string,
  ): Promise<S3ObjectFile | undefined> {
    const slot = this.buckets.get(bucket);
    if (slot === undefined) return undefined;
    if (slot.record.account !== account) throw accessDenied();
    const b = await this.loaded(slot);
    const record = b.objects.get(key);
    if (record === undefined) return undefined;
    return {
      path: this.blobPath(b, record.blob),
      size: record.size,
      etag: record.etag,
      lastModified: record.lastModified,
    };
  }

  // ---- multipart uploads -----------------------------------------------------

  createUpload(bucket: Bucket, fields: Omit<UploadRecord, 'id'>): Promise<UploadRecord> {
    return this.change(bucket, async () => {
      // Time first, so that upload ids sort in the order they were made.
      const id = `${this.now().toString(16).padStart(12, '0')}${randomId(26)}`;
      const record: UploadRecord = { ...fields, id };
      await mkdir(this.uploadDir(bucket.record, id), { recursive: true });
      await writeJsonDurably(
        this.tmpDir,
        join(this.uploadDir(bucket.record, id), 'upload.json'),
        record,
      );
      bucket.uploads.set(id, { record, parts: new Map(), completing: false });
      return record;
    });
  }

  upload(bucket: Bucket, uploadId: string): Upload {
    const upload = /^[0-9a-f]{64}$/.test(uploadId) ? bucket.uploads.get(uploadId) : undefined;
    if (upload === undefined) throw noSuchUpload(uploadId);
    return upload;
  }

  async commitPart(
    bucket: Bucket,
    upload: Upload,
    tmp: string,
    fields: Omit<PartRecord, 'blob'>,
  ): Promise<PartRecord> {
    try {
      return await this.change(bucket, async () => {
        if (bucket.uploads.get(upload.record.id) !== upload || upload.completing)
          throw noSuchUpload(upload.record.id);
        const record: PartRecord = { ...fields, blob: randomId(16) };
        await renameDurably(tmp, this.blobPath(bucket, record.blob));
        try {
          await writeJsonDurably(
            this.tmpDir,
            join(this.uploadDir(bucket.record, upload.record.id), `part-${record.number}.json`),
            record,
          );
        } catch (error) {
          await removeQuietly(this.blobPath(bucket, record.blob));
          throw error;
        }
        const old = upload.parts.get(record.number);
        upload.parts.set(record.number, record);
        if (old !== undefined) await removeQuietly(this.blobPath(bucket, old.blob));
        return record;
      });
    } finally {
      await removeQuietly(tmp);
    }
  }

  /** Claims the upload for completion (no part may be added or replaced meanwhile). */
  beginComplete(bucket: Bucket, upload: Upload): Promise<void> {
    return this.change(bucket, async () => {
      if (bucket.uploads.get(upload.record.id) !== upload || upload.completing)
        throw noSuchUpload(upload.record.id);
      upload.completing = true;
    });
  }

  endComplete(upload: Upload): void {
    upload.completing = false;
  }

  /** Forgets an upload and its parts (after completing it, or to abort it). */
  removeUpload(bucket: Bucket, upload: Upload, aborting: boolean): Promise<void> {
    return this.change(bucket, async () => {
      if (bucket.uploads.get(upload.record.id) !== upload || (aborting && upload.completing))
        throw noSuchUpload(upload.record.id);
      const dir = this.uploadDir(bucket.record, upload.record.id);
      // upload.json goes first: without it the rest is swept at the next load.
      await removeQuietly(join(dir, 'upload.json'));
      await syncDir(dir);
      bucket.uploads.delete(upload.record.id);
      for (const part of upload.parts.values())
        await removeQuietly(this.blobPath(bucket, part.blob));
      await rm(dir, { recursive: true, force: true });
    });
  }

  /** Blob paths of the parts, for concatenation. */
  partPaths(bucket: Bucket, parts: readonly PartRecord[]): string[] {
    return parts.map((p) => this.blobPath(bucket, p.blob));
  }
}
