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
} from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
  | { readonly kind: 'file'; readonly path: string; readonly size: number }
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
   */
  async put(input: ObjectInput, expected?: string, signal?: AbortSignal): Promise<PutResult> {
    if (expected !== undefined && (await this.has(expected))) {
      await this.#touch(expected);
      return { id: expected, size: await this.size(expected), added: false };
    }
    const tmpDir = join(this.root, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${randomBytes(8).toString('hex')}.obj`);
    const hash = createHash('sha512');
    let size = 0;
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o444);
    try {
      const source =
        input.kind === 'file'
          ? createReadStream(input.path, { highWaterMark: 1024 * 1024, signal })
          : input.stream;
      await pipeline(
        source,
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
      await fh.sync();
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
    const sizeMismatch =
      (input.kind === 'file' && size !== input.size) ||
      (input.kind === 'stream' && input.size !== undefined && size !== input.size);
    if ((expected !== undefined && id !== expected) || sizeMismatch) {
      await unlink(tmp).catch(() => {});
      throw new FerryError(
        input.kind === 'file' ? 'FERRY_STORE_SOURCE_UNSUPPORTED' : 'FERRY_STORE_OBJECT_CORRUPT',
        input.kind === 'file'
          ? `Cannot store ${input.path}: it changed while it was read`
          : `Cannot store object: the bytes hash to ${id.slice(0, 16)}…, not ${String(expected).slice(0, 16)}… (or are not ${input.size ?? '?'} bytes)`,
        { details: { expected: expected ?? null, actual: id, size } },
      );
    }
    const dest = this.pathOf(id);
    if (await this.has(id)) {
      await unlink(tmp).catch(() => {});
      await this.#touch(id);
      return { id, size, added: false };
    }
    await mkdir(join(this.root, 'objects', id.slice(0, 2)), { recursive: true });
    await rename(tmp, dest);
    return { id, size, added: true };
  }

  /** Refreshes an object's mtime: GC spares recently used objects an ingest may be about to commit. */
  async #touch(id: string): Promise<void> {
    const now = new Date();
    await utimes(this.pathOf(id), now, now).catch(() => {});
  }

  /** Streams an object, verifying its hash as it goes: a corrupt object fails at its end. */
  async *read(id: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
    const path = this.pathOf(id);
    const hash = createHash('sha512');
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
    for await (const chunk of stream) {
      hash.update(chunk);
      yield chunk;
    }
    const actual = hash.digest('hex');
    if (actual !== id) {
      throw new FerryError(
        'FERRY_STORE_OBJECT_CORRUPT',
        `Cannot read object ${id.slice(0, 16)}…: its bytes hash to ${actual.slice(0, 16)}…`,
        {
          details: { id, actual },
          hint: 'Restore it from a replica (ferry replicate) or re-ingest its source',
        },
      );
    }
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
function writeTo(fh: FileHandle): (source: AsyncIterable<Buffer>) => Promise<void> {
  return async (source) => {
    for await (const chunk of source) {
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, done, chunk.length - done);
        done += bytesWritten;
      }
    }
  };
}
