import { constants } from 'node:fs';
import { type FileHandle, lstat, open, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FerryError } from '../errors/index.js';
import type { ByteRange, ByteSource } from './byte-source.js';
import { DIRECT_READ_MAX, DirectReader } from './direct-reader.js';
import { seekDataRanges } from './seek-data.js';

/** Wraps an OS error into FERRY_IO / FERRY_NOT_FOUND with the path. */
export function ioError(action: string, path: string, error: unknown): FerryError {
  const errno = (error as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
  return new FerryError(
    errno === 'ENOENT' ? 'FERRY_NOT_FOUND' : 'FERRY_IO',
    `Cannot ${action} ${path}: ${errno}`,
    { details: { path, errno }, cause: error },
  );
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new FerryError('FERRY_ABORTED', 'Cannot continue: the operation was aborted', {
      cause: signal.reason,
    });
  }
}

/** A read-only regular file as a ByteSource. */
export class FileSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  readonly #handle: FileHandle;
  #direct: DirectReader | null = null;
  #closed = false;

  private constructor(path: string, handle: FileHandle, size: number) {
    this.name = path;
    this.#handle = handle;
    this.size = size;
  }

  /**
   * Opens a regular file (never a device, FIFO or directory) read-only.
   * `directReads`: large aligned reads bypass the page cache (DirectReader),
   * for a file read once from end to end; a read longer than a bounce slot
   * goes in slot-sized pieces at once, and a piece that cannot go direct
   * (too short, no slot free) is read buffered.
   */
  static async open(path: string, options: { directReads?: boolean } = {}): Promise<FileSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      throw ioError('open', path, error);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        throw new FerryError('FERRY_IO', `Cannot open ${path}: it is not a regular file`, {
          details: { path },
        });
      }
      const source = new FileSource(path, handle, st.size);
      if (options.directReads === true) source.#direct = await DirectReader.open(path);
      return source;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(buf, offset, signal);
    return buf;
  }

  async readInto(target: Buffer, offset: number, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    const length = target.length;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new FerryError('FERRY_INTERNAL', `Cannot read ${this.name}: invalid range`, {
        details: { offset, length },
      });
    }
    if (offset + length > this.size) {
      throw new FerryError(
        'FERRY_IMAGE_TRUNCATED',
        `Cannot read ${this.name}: bytes ${offset}+${length} lie past the end of the file (${this.size})`,
        { details: { offset, length, size: this.size } },
      );
    }
    const direct = this.#direct;
    if (direct?.covers(offset, length) === true) {
      // Long reads go direct in bounce-slot pieces, read at once; a piece
      // that cannot go direct is read buffered.
      const pieces: Promise<void>[] = [];
      for (let at = 0; at < length; at += DIRECT_READ_MAX) {
        const piece = target.subarray(at, Math.min(length, at + DIRECT_READ_MAX));
        pieces.push(
          direct.readInto(piece, offset + at).then(
            (done) => (done ? undefined : this.#readBuffered(piece, offset + at)),
            (error: unknown) => {
              throw ioError('read', this.name, error);
            },
          ),
        );
      }
      await Promise.all(pieces);
      return;
    }
    await this.#readBuffered(target, offset);
  }

  async #readBuffered(target: Buffer, offset: number): Promise<void> {
    const length = target.length;
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.#handle.read(target, done, length - done, offset + done));
      } catch (error) {
        throw ioError('read', this.name, error);
      }
      if (n === 0) {
        throw new FerryError(
          'FERRY_IMAGE_TRUNCATED',
          `Cannot read ${this.name}: the file shrank while reading`,
          {
            details: { offset: offset + done },
          },
        );
      }
      done += n;
    }
  }

  async dataRanges(offset: number, length: number): Promise<ByteRange[]> {
    const ranges = seekDataRanges(this.#handle.fd, offset, Math.min(length, this.size - offset));
    return ranges ?? [{ offset, length: Math.min(length, this.size - offset) }];
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#direct?.close();
    await this.#handle.close();
  }
}

/**
 * Opens `name` next to `imagePath`, refusing anything but a bare file name of
 * a regular file (no separators, no "..", no symlink) that stays in the directory.
 */
export async function openSiblingFile(imagePath: string, name: string): Promise<FileSource> {
  if (
    name === '' ||
    name === '.' ||
    name === '..' ||
    name !== basename(name) ||
    name.includes('\\') ||
    name.includes('\0')
  ) {
    throw new FerryError(
      'FERRY_VMDK_EXTENT_PATH',
      `Cannot open extent "${name}": only a plain file name in the image's directory is allowed`,
      {
        details: { name },
      },
    );
  }
  const dir = dirname(imagePath);
  const target = join(dir, name);
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(target);
  } catch (error) {
    throw ioError('open extent', target, error);
  }
  if (!st.isFile()) {
    throw new FerryError(
      'FERRY_VMDK_EXTENT_PATH',
      `Cannot open extent "${name}": it is not a regular file`,
      {
        details: { name },
      },
    );
  }
  const [realDir, realTarget] = await Promise.all([realpath(dir), realpath(target)]);
  if (dirname(realTarget) !== realDir) {
    throw new FerryError(
      'FERRY_VMDK_EXTENT_PATH',
      `Cannot open extent "${name}": it resolves outside the image's directory`,
      {
        details: { name },
      },
    );
  }
  return FileSource.open(target);
}
