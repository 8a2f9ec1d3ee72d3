import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, type FileHandle, lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { DirectHandle, writeThrough } from './direct-io.js';
import { ioError } from './file-source.js';
import { nativeBinding } from './seek-data.js';

/**
 * A file being written: bytes go to a temporary file beside the destination
 * and reach the destination only through `commit` (fsync + rename), so an
 * interrupted or failed write never leaves a half-written image in its place.
 * With `directWrites`, large aligned writes bypass the page cache through a
 * second, O_DIRECT handle where the file system allows (see DirectHandle;
 * FERRY_NO_DIRECT_IO=1 turns it off): for an image not read back soon (a
 * render), it spares the system time of filling fresh page-cache pages.
 * Without, everything is buffered and written back in the background
 * (WriteQueue's periodic writeback), which keeps the device's queue deep:
 * direct writes that extend a file run one at a time, each waiting for the
 * device (measured, convert of a 2 GiB half-allocated raw image, cold cache:
 * raw 2.45 s buffered against 2.95 s direct).
 */
/** How an OutputFile is opened (a writer's WriterOptions fit). */
export interface OutputFileOptions {
  /** Replace an existing file at the destination. */
  readonly overwrite?: boolean | undefined;
  /** Large aligned writes bypass the page cache (see above). Default: buffered. */
  readonly directWrites?: boolean | undefined;
}

export class OutputFile {
  readonly path: string;
  readonly tempPath: string;
  readonly #handle: FileHandle;
  #direct: DirectHandle | null = null;
  #done = false;
  /** Highest byte offset written so far (end of the furthest write). */
  end = 0;

  /** Large writes bypass the page cache (an O_DIRECT handle is open). */
  get direct(): boolean {
    return this.#direct !== null;
  }

  private constructor(path: string, tempPath: string, handle: FileHandle) {
    this.path = path;
    this.tempPath = tempPath;
    this.#handle = handle;
  }

  static async create(path: string, options: OutputFileOptions = {}): Promise<OutputFile> {
    if (options.overwrite !== true) {
      const exists = await lstat(path).then(
        () => true,
        () => false,
      );
      if (exists) {
        throw new FerryError('FERRY_DESTINATION_EXISTS', `Cannot write ${path}: the file exists`, {
          details: { path },
          hint: 'Pass --overwrite to replace it',
        });
      }
    }
    const tempPath = join(
      dirname(path),
      `.${basename(path)}.ferry-${randomBytes(6).toString('hex')}.tmp`,
    );
    let handle: FileHandle;
    try {
      handle = await open(tempPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644);
    } catch (error) {
      throw ioError('create', tempPath, error);
    }
    const out = new OutputFile(path, tempPath, handle);
    if (options.directWrites === true) out.#direct = await DirectHandle.open(tempPath);
    return out;
  }

  /**
   * Like `create`, but the temporary file starts as a clone of `source` (a
   * reflink: shared blocks, nearly free), so a writer that changes a few
   * regions of a previous image writes only those. Answers null where the
   * file system cannot clone (ext4, across file systems): a byte copy there
   * costs as much as writing the image afresh, so the caller does that.
   */
  static async createFromClone(
    path: string,
    source: string,
    options: OutputFileOptions = {},
  ): Promise<OutputFile | null> {
    const blank = await OutputFile.create(path, { overwrite: options.overwrite });
    await blank.discard();
    try {
      await copyFile(
        source,
        blank.tempPath,
        constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE,
      );
    } catch (error) {
      await unlink(blank.tempPath).catch(() => {});
      const code = (error as NodeJS.ErrnoException).code;
      if (
        code === 'ENOTSUP' ||
        code === 'EOPNOTSUPP' ||
        code === 'EXDEV' ||
        code === 'EINVAL' ||
        code === 'ENOSYS'
      )
        return null;
      throw ioError('copy', source, error);
    }
    let handle: FileHandle;
    try {
      handle = await open(blank.tempPath, constants.O_RDWR);
    } catch (error) {
      await unlink(blank.tempPath).catch(() => {});
      throw ioError('open', blank.tempPath, error);
    }
    const out = new OutputFile(path, blank.tempPath, handle);
    if (options.directWrites === true) out.#direct = await DirectHandle.open(blank.tempPath);
    out.end = (await handle.stat()).size;
    return out;
  }

  async write(data: Buffer, position: number): Promise<void> {
    await this.writev([data], position);
  }

  /** Writes several buffers contiguously from `position` in one system call where possible. */
  async writev(buffers: readonly Buffer[], position: number): Promise<void> {
    let total = 0;
    for (const b of buffers) total += b.length;
    try {
      await writeThrough(this.#handle, this.#direct, buffers, position);
    } catch (error) {
      throw ioError('write', this.tempPath, error);
    }
    this.end = Math.max(this.end, position + total);
  }

  async read(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    try {
      await this.#handle.read(buf, 0, length, position);
    } catch (error) {
      throw ioError('read', this.tempPath, error);
    }
    return buf;
  }

  /** Sets the file length (extending it sparsely). */
  async truncate(length: number): Promise<void> {
    try {
      await this.#handle.truncate(length);
    } catch (error) {
      throw ioError('resize', this.tempPath, error);
    }
    this.end = length;
  }

  /**
   * Flushes the data written so far to the device (fdatasync) and keeps the
   * file open. Writers may start it in the background every few tens of MiB
   * so writeback overlaps the conversion and `commit`'s fsync is short.
   */
  async datasync(): Promise<void> {
    try {
      await this.#handle.datasync();
    } catch (error) {
      throw ioError('flush', this.tempPath, error);
    }
  }

  /**
   * Starts writing the file's dirty pages to the device without waiting for
   * them (sync_file_range WRITE: no journal commit, no cache flush). Resolves
   * false where that is unavailable (no native binding, another platform, a
   * file system without it); the caller then uses `datasync`.
   */
  async startWriteback(): Promise<boolean> {
    const start = nativeBinding()?.startWriteback;
    if (start === undefined) return false;
    try {
      return await start(this.#handle.fd);
    } catch (error) {
      throw ioError('flush', this.tempPath, error);
    }
  }

  async size(): Promise<number> {
    return (await this.#handle.stat()).size;
  }

  /** fsyncs and renames the temporary file onto the destination. */
  async commit(): Promise<void> {
    if (this.#done)
      throw new FerryError('FERRY_INTERNAL', `Cannot commit ${this.path}: already finished`);
    this.#done = true;
    try {
      await this.#direct?.close();
      await this.#handle.sync();
      await this.#handle.close();
      await rename(this.tempPath, this.path);
    } catch (error) {
      await unlink(this.tempPath).catch(() => {});
      throw ioError('commit', this.path, error);
    }
  }

  /** Removes the temporary file. Safe to call more than once. */
  async discard(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#direct?.close().catch(() => {});
    await this.#handle.close().catch(() => {});
    await unlink(this.tempPath).catch(() => {});
  }
}
