import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  rename,
  stat,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { nativeBinding } from '../disk/seek-data.js';
import { FerryError } from '../errors/index.js';

const HEX512 = /^[0-9a-f]{128}$/;

export function isObjectId(id: string): boolean {
  return HEX512.test(id);
}

function checkId(id: string): void {
  if (!isObjectId(id)) {
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot use object id "${id.slice(0, 140)}": not a SHA-512 hex digest`,
    );
  }
}

/** Where a put came from: a file to copy (ingest) or a stream (network, tar). */
export type ObjectInput =
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly size: number;
      /** The hash the file most likely has (the previous revision's, same path, size and mtime). */
      readonly likely?: string;
    }
  | {
      readonly kind: 'stream';
      readonly stream: AsyncIterable<Buffer> | Iterable<Buffer>;
      readonly size?: number;
    };

export interface PutResult {
  readonly id: string;
  readonly size: number;
  /** False when the store already had the object (nothing was written). */
  readonly added: boolean;
}

/**
 * Content-addressed objects in a local directory: `objects/ab/<128 hex>`,
 * fanned out by the first two hex digits. Writes go to `tmp/` and are renamed
 * into place after fsync, so a crash never leaves a partial object under its
 * name; reads are hashed as they stream and a mismatch is an error, never
 * data.
 */
export class LocalObjectStore {
  readonly root: string;
  /** The publish under way; the next waits for it. */
  #publishing: Promise<void> = Promise.resolve();

  constructor(root: string) {
    this.root = root;
  }

  pathOf(id: string): string {
    checkId(id);
    return join(this.root, 'objects', id.slice(0, 2), id.slice(2));
  }

  async has(id: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(id))).isFile();
    } catch {
      return false;
    }
  }

  async size(id: string): Promise<number> {
    try {
      return (await stat(this.pathOf(id))).size;
    } catch (error) {
      throw missing(id, error);
    }
  }

  /**
   * Stores bytes and returns their SHA-512. When `expected` is given the bytes
   * must hash to it (FERRY_STORE_OBJECT_CORRUPT otherwise, nothing stored).
   * Small files are read whole and hashed before anything is written, so an
   * object the store already has costs one read. With a `batch`, new objects
   * wait in tmp/ unsynced until `publish(batch)`: one syncfs for a whole
   * ingest instead of an fsync per file.
   */
  async put(
    input: ObjectInput,
    expected?: string,
    signal?: AbortSignal,
    batch?: ObjectBatch,
  ): Promise<PutResult> {
    if (expected !== undefined && (await this.has(expected))) {
      await this.#touch(expected);
      return { id: expected, size: await this.size(expected), added: false };
    }
    if (input.kind === 'file' && input.size <= SMALL_FILE) {
      const data = await readSmall(input.path, input.size);
      const id = createHash('sha512').update(data).digest('hex');
      if (expected !== undefined && id !== expected) throw corrupt(id, expected, data.length);
      if (await this.#known(id, batch)) return { id, size: data.length, added: false };
      const tmp = await this.#tmpPath();
      await writeFile(tmp, data, { flag: 'wx', mode: 0o444 });
      return this.#place(tmp, id, data.length, batch);
    }
    if (
      input.kind === 'file' &&
      expected === undefined &&
      input.likely !== undefined &&
      (await this.has(input.likely))
    ) {
      // Most likely stored already: hash first, so an unchanged file costs one read and no write.
      const id = await hashFile(input.path, input.size, signal);
      if (await this.#known(id, batch)) return { id, size: input.size, added: false };
    }
    if (input.kind === 'file')
      return this.#putLargeFile(input.path, input.size, expected, signal, batch);
    const tmp = await this.#tmpPath();
    const hash = createHash('sha512');
    let size = 0;
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o444);
    try {
      await pipeline(
        input.stream,
        new Transform({
          transform(chunk: Buffer, _enc, cb: TransformCallback) {
            hash.update(chunk);
            size += chunk.length;
            cb(null, chunk);
          },
        }),
        writeTo(fh),
        ...(signal === undefined ? [] : [{ signal }]),
      );
      if (batch === undefined) await fh.sync();
    } catch (error) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      if (error instanceof FerryError) throw error;
      if ((error as { name?: string }).name === 'AbortError')
        throw new FerryError('FERRY_ABORTED', 'Cannot store object: the operation was aborted');
      throw new FerryError('FERRY_IO', `Cannot store object: ${(error as Error).message}`, {
        cause: error,
      });
    }
    await fh.close();
    const id = hash.digest('hex');
    const sizeMismatch = input.size !== undefined && size !== input.size;
    if ((expected !== undefined && id !== expected) || sizeMismatch) {
      await unlink(tmp).catch(() => {});
      throw corrupt(id, expected, size, input.size);
    }
    if (await this.#known(id, batch)) {
      await unlink(tmp).catch(() => {});
      return { id, size, added: false };
    }
    return this.#place(tmp, id, size, batch);
  }

  /**
   * One pass over a large file: each chunk is hashed and written to a
   * temporary object at once, the next read already under way, so a new file
   * is read once (not hashed first and then copied). A file the store already
   * has costs the same read plus a write to the page cache that the unlink
   * throws away (with a batch nothing is synced before that). The file is
   * opened without following a symlink; a file that grows or shrinks while
   * it is read is refused.
   */
  async #putLargeFile(
    path: string,
    size: number,
    expected: string | undefined,
    signal: AbortSignal | undefined,
    batch: ObjectBatch | undefined,
  ): Promise<PutResult> {
    const tmp = await this.#tmpPath();
    const hash = createHash('sha512');
    let src: FileHandle | undefined;
    let dst: FileHandle | undefined;
    try {
      src = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      dst = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o444);
      const buffers = [Buffer.allocUnsafe(LARGE_CHUNK), Buffer.allocUnsafe(LARGE_CHUNK)];
      const readAt = (i: number, at: number) => readFull(src!, buffers[i % 2]!, at);
      let n = 0;
      let i = 0;
      let next = readAt(0, 0);
      for (;;) {
        if (signal?.aborted === true) throw aborted();
        const got = await next;
        if (got === 0) break;
        const chunk = buffers[i % 2]!.subarray(0, got);
        i++;
        next = readAt(i, n + got);
        hash.update(chunk);
        let w = 0;
        while (w < got) w += (await dst.write(chunk, w, got - w, n + w)).bytesWritten;
        n += got;
        if (n > size) break;
      }
      await next.catch(() => 0);
      if (n !== size) throw changed(path);
      const id = hash.digest('hex');
      if (expected !== undefined && id !== expected) throw changed(path);
      if (batch === undefined) await dst.sync();
      await dst.close();
      dst = undefined;
      if (await this.#known(id, batch)) {
        await unlink(tmp).catch(() => {});
        return { id, size, added: false };
      }
      return await this.#place(tmp, id, size, batch);
    } catch (error) {
      await dst?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      if (error instanceof FerryError) throw error;
      throw new FerryError('FERRY_IO', `Cannot store ${path}: ${(error as Error).message}`, {
        cause: error,
        details: { path },
      });
    } finally {
      await src?.close().catch(() => {});
    }
  }

  /**
   * True when `id` is stored or already waiting in `batch`. A stored object
   * has its mtime refreshed: GC spares it while the caller commits.
   */
  async #known(id: string, batch: ObjectBatch | undefined): Promise<boolean> {
    if (batch?.has(id) === true) return true;
    if (!(await this.has(id))) return false;
    await this.#touch(id);
    return true;
  }

  /**
   * Runs `fn` with a fresh batch, then publishes it; on failure the batch's
   * temporary files are removed and nothing becomes visible.
   */
  async withBatch<T>(fn: (batch: ObjectBatch) => Promise<T>): Promise<T> {
    const batch = new ObjectBatch();
    try {
      const result = await fn(batch);
      await this.publish(batch);
      return result;
    } catch (error) {
      await this.discard(batch);
      throw error;
    }
  }

  async #tmpPath(): Promise<string> {
    const tmpDir = join(this.root, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    return join(tmpDir, `${randomBytes(8).toString('hex')}.obj`);
  }

  /** Moves a complete temporary object under its name, or leaves it to the batch. */
  async #place(
    tmp: string,
    id: string,
    size: number,
    batch: ObjectBatch | undefined,
  ): Promise<PutResult> {
    if (batch !== undefined) {
      // Two files with the same contents stored at once: the first one's temporary wins.
      if (batch.has(id)) {
        await unlink(tmp).catch(() => {});
        return { id, size, added: false };
      }
      batch.add(id, tmp);
      return { id, size, added: true };
    }
    if (await this.has(id)) {
      await unlink(tmp).catch(() => {});
      return { id, size, added: false };
    }
    await mkdir(join(this.root, 'objects', id.slice(0, 2)), { recursive: true });
    await rename(tmp, this.pathOf(id));
    return { id, size, added: true };
  }

  /**
   * Makes a batch's objects durable and visible: one syncfs (or an fsync per
   * file without the native binding), then the renames, then a second flush
   * so the names are durable too. Call it before committing anything that
   * names them.
   */
  publish(batch: ObjectBatch): Promise<void> {
    // One at a time: a caller whose objects another publish took waits until they are in place.
    const run = this.#publishing.then(() => this.#publish(batch));
    this.#publishing = run.catch(() => {});
    return run;
  }

  async #publish(batch: ObjectBatch): Promise<void> {
    const pending = batch.take();
    if (pending.length === 0) return;
    await flushFilesystem(
      join(this.root, 'tmp'),
      pending.map((p) => p.tmp),
    );
    for (const { id, tmp } of pending) {
      if (await this.has(id)) {
        await unlink(tmp).catch(() => {});
        continue;
      }
      await mkdir(join(this.root, 'objects', id.slice(0, 2)), { recursive: true });
      await rename(tmp, this.pathOf(id));
    }
    await flushFilesystem(join(this.root, 'objects'), []);
  }

  /** Removes a batch's temporary files (an ingest that failed). */
  async discard(batch: ObjectBatch): Promise<void> {
    for (const { tmp } of batch.take()) await unlink(tmp).catch(() => {});
  }

  /** Refreshes an object's mtime: GC spares recently used objects an ingest may be about to commit. */
  async #touch(id: string): Promise<void> {
    const now = new Date();
    await utimes(this.pathOf(id), now, now).catch(() => {});
  }

  /** Streams an object, verifying its hash as it goes: a corrupt object fails at its end. */
  async *read(id: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
    const path = this.pathOf(id);
    let stream: AsyncIterable<Buffer>;
    try {
      await stat(path);
      stream = createReadStream(path, {
        highWaterMark: 1024 * 1024,
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      throw missing(id, error);
    }
    yield* verifiedObject(id, stream, '');
  }

  /** Reads a whole (small) object, verified. */
  async readAll(id: string, max: number, signal?: AbortSignal): Promise<Buffer> {
    const size = await this.size(id);
    if (size > max) {
      throw new FerryError(
        'FERRY_STORE_MANIFEST_INVALID',
        `Cannot read object ${id.slice(0, 16)}…: over ${max} bytes`,
      );
    }
    const parts: Buffer[] = [];
    for await (const c of this.read(id, signal)) parts.push(c);
    return Buffer.concat(parts);
  }

  /** Every object id present (for GC and replication). */
  async *list(): AsyncGenerator<string> {
    const dir = join(this.root, 'objects');
    let fans: string[];
    try {
      fans = (await readdir(dir)).sort();
    } catch {
      return;
    }
    for (const fan of fans) {
      if (!/^[0-9a-f]{2}$/.test(fan)) continue;
      for (const rest of (await readdir(join(dir, fan))).sort()) {
        const id = fan + rest;
        if (isObjectId(id)) yield id;
      }
    }
  }

  async delete(id: string): Promise<void> {
    await unlink(this.pathOf(id)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
}

/**
 * Yields an object's bytes as they arrive, hashing them: a stream that does
 * not hash to `id` fails at its end with FERRY_STORE_OBJECT_CORRUPT, so no
 * reader ever takes corrupt bytes as complete. `from` names a remote source.
 */
export async function* verifiedObject(
  id: string,
  chunks: AsyncIterable<Uint8Array>,
  from: string,
): AsyncGenerator<Buffer> {
  const hash = createHash('sha512');
  for await (const c of chunks) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    hash.update(b);
    yield b;
  }
  const actual = hash.digest('hex');
  if (actual !== id) {
    throw new FerryError(
      'FERRY_STORE_OBJECT_CORRUPT',
      `Cannot read object ${id.slice(0, 16)}…${from === '' ? '' : ` from ${from}`}: its bytes hash to ${actual.slice(0, 16)}…`,
      {
        details: { id, actual },
        hint: 'Restore it from a replica (ferry replicate) or re-ingest its source',
      },
    );
  }
}

/** Files up to this size are read whole, hashed, and written only when new. */
const SMALL_FILE = 256 * 1024;
/** Read size of the one-pass large-file path (two buffers per file in flight). */
const LARGE_CHUNK = 1024 * 1024;

/** New objects of one ingest, waiting in tmp/ for one flush. */
export class ObjectBatch {
  readonly #pending = new Map<string, string>();

  has(id: string): boolean {
    return this.#pending.has(id);
  }

  add(id: string, tmp: string): void {
    this.#pending.set(id, tmp);
  }

  take(): Array<{ id: string; tmp: string }> {
    const out = [...this.#pending].map(([id, tmp]) => ({ id, tmp }));
    this.#pending.clear();
    return out;
  }
}

/** SHA-512 of a file opened without following a symlink; a file of another size is refused. */
async function hashFile(path: string, size: number, signal?: AbortSignal): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: unknown) => {
    throw new FerryError('FERRY_IO', `Cannot store ${path}: ${(error as Error).message}`, {
      cause: error,
      details: { path },
    });
  });
  try {
    const hash = createHash('sha512');
    const buf = Buffer.allocUnsafe(LARGE_CHUNK);
    let n = 0;
    for (;;) {
      if (signal?.aborted === true) throw aborted();
      const got = await readFull(fh, buf, n);
      if (got === 0) break;
      hash.update(buf.subarray(0, got));
      n += got;
      if (n > size) break;
    }
    if (n !== size) throw changed(path);
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

/** Reads up to buf.length bytes at `at`; fewer only at the end of the file. */
async function readFull(fh: FileHandle, buf: Buffer, at: number): Promise<number> {
  let n = 0;
  while (n < buf.length) {
    const { bytesRead } = await fh.read(buf, n, buf.length - n, at + n);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n;
}

function aborted(): FerryError {
  return new FerryError('FERRY_ABORTED', 'Cannot store object: the operation was aborted');
}

async function readSmall(path: string, size: number): Promise<Buffer> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    // One byte more than expected: a file that grew is caught, not truncated.
    const buf = Buffer.allocUnsafe(size + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) break;
    }
    if (n !== size) throw changed(path);
    return buf.subarray(0, size);
  } finally {
    await fh.close();
  }
}

function changed(path: string): FerryError {
  return new FerryError(
    'FERRY_STORE_SOURCE_UNSUPPORTED',
    `Cannot store ${path}: it changed while it was read`,
    {
      details: { path },
    },
  );
}

function corrupt(
  actual: string,
  expected: string | undefined,
  size: number,
  want?: number,
): FerryError {
  return new FerryError(
    'FERRY_STORE_OBJECT_CORRUPT',
    `Cannot store object: the bytes hash to ${actual.slice(0, 16)}…, not ${String(expected).slice(0, 16)}… (or are not ${want ?? '?'} bytes)`,
    { details: { expected: expected ?? null, actual, size } },
  );
}

/** syncfs of the filesystem holding `dir` (native binding), else an fsync of each file. */
async function flushFilesystem(dir: string, files: readonly string[]): Promise<void> {
  const b = nativeBinding();
  if (b?.syncfs !== undefined) {
    const fh = await open(dir, constants.O_RDONLY);
    try {
      b.syncfs(fh.fd);
    } finally {
      await fh.close();
    }
    return;
  }
  for (const f of files) {
    const fh = await open(f, constants.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  const d = await open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function missing(id: string, cause: unknown): FerryError {
  return new FerryError(
    'FERRY_STORE_NOT_FOUND',
    `Cannot read object ${id.slice(0, 16)}…: the store has no such object`,
    {
      details: { id },
      cause,
    },
  );
}

/** A writable sink onto an open file handle (sequential writes). */
/** Bytes gathered before one write: network streams arrive in 16-64 KiB pieces. */
const WRITE_GATHER = 1024 * 1024;

/** A sink onto an open file handle: sequential writes of up to WRITE_GATHER bytes gathered from the stream. */
function writeTo(fh: FileHandle): (source: AsyncIterable<Buffer>) => Promise<void> {
  const flush = async (parts: Buffer[]): Promise<void> => {
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    let done = 0;
    while (done < buf.length) done += (await fh.write(buf, done, buf.length - done)).bytesWritten;
  };
  return async (source) => {
    let parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of source) {
      parts.push(chunk);
      n += chunk.length;
      if (n >= WRITE_GATHER) {
        await flush(parts);
        parts = [];
        n = 0;
      }
    }
    if (n > 0) await flush(parts);
  };
}
