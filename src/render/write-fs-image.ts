import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { collectExtents, type DiskImage, type DiskWriter, WRITE_CHUNK } from '../disk/index.js';
import { readImageInto } from '../disk/read-range.js';
import { FerryError } from '../errors/index.js';
import { orderedPool } from '../util/ordered-pool.js';
import { DIFF_CHUNK } from './chunk-digest.js';
import type { Run } from './ext4/extents.js';
import type { FileRegion } from './ext4/plan-ext4.js';
import type { WindowPiece, WindowReply } from './window-worker.js';

export { DIFF_CHUNK } from './chunk-digest.js';

const BLOCK = 4096;

/** A laid-out filesystem ready to be written: metadata blocks, file runs, freed runs. */
export interface FsLayout {
  readonly blocksCount: number;
  readonly meta: ReadonlyMap<number, Buffer>;
  readonly files: readonly FileRegion[];
  readonly freed: readonly Run[];
}

export interface WriteFsOptions {
  /** Where file contents are: the path of an object by its hash (a local store). */
  readonly objectPath: (hash: string) => string;
  /** The previous render: its bytes fill every block this layout does not write. */
  readonly base?: DiskImage;
  /**
   * The writer already holds the base's bytes (createRawPatch): windows this
   * layout leaves as the base has them are neither read nor written.
   */
  readonly patch?: boolean;
  /**
   * The chunk digests of the base's map. Without the base image they decide
   * which chunks changed; with a patch they are carried over for windows
   * left as the base has them.
   */
  readonly baseChunks?: ReadonlyMap<number, string>;
  /** Zero the blocks the base used and this layout frees (default: they keep their old bytes). */
  readonly zeroFreed?: boolean;
  /** Worker threads reading file contents (default 2; memory: about 4 MiB of windows each). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface WriteFsResult {
  /** 512 KiB chunks that hold anything but zeros. */
  readonly dataChunks: number;
  /** 512 KiB chunks whose bytes differ from the base (all data chunks without a base). */
  readonly changedChunks: number;
  readonly totalChunks: number;
  readonly fileSize: number;
  /**
   * SHA-256 (base64) of every chunk holding data, by chunk index; null when
   * a patch skipped windows of a base whose map had no digests.
   */
  readonly chunks: ReadonlyMap<number, string> | null;
}

/** What one 2 MiB window holds: its metadata blocks, file runs, whether the base has data there, freed runs. */
interface WindowPlan {
  readonly offset: number;
  readonly length: number;
  readonly meta: number[];
  readonly regions: FileRegion[];
  readonly baseHas: boolean;
  readonly freed: Run[];
}

interface Window {
  readonly offset: number;
  readonly length: number;
  readonly buf: Buffer;
  readonly digests: (string | null)[];
  readonly base: Buffer | null;
}

function corrupt(hash: string): FerryError {
  return new FerryError(
    'FERRY_STORE_OBJECT_CORRUPT',
    `Cannot render: the stored object ${hash.slice(0, 16)}… does not hash to its name`,
    { details: { id: hash } },
  );
}

/**
 * Writes a laid-out filesystem through a disk writer in 2 MiB windows, in
 * order: the base's bytes (or zeros), then metadata and file contents on
 * top. File contents are read from the store's object files by worker
 * threads, and the worker that copies a file's first block hashes the whole
 * file (reading on past its window when the file does), so a corrupted
 * object fails the render instead of landing in an image and the main thread
 * hashes nothing. Windows with nothing in them are never written.
 * Counts the 512 KiB chunks that differ from the base.
 */
export async function writeFsImage(
  layout: FsLayout,
  writer: DiskWriter,
  options: WriteFsOptions,
): Promise<WriteFsResult> {
  const size = layout.blocksCount * BLOCK;
  const metaBlocks = [...layout.meta.keys()].sort((a, b) => a - b);
  const baseData = options.base
    ? (await collectExtents(options.base.extents(options.signal))).filter((e) => e.kind === 'data')
    : [];
  const blocksPerWindow = WRITE_CHUNK / BLOCK;

  let keptDataChunks = 0;
  const chunks = new Map<number, string>();
  let chunksComplete = true;
  let mi = 0;
  let fi = 0;
  let bi = 0;
  let ri = 0;
  function* windows(): Generator<WindowPlan> {
    for (let offset = 0; offset < size; offset += WRITE_CHUNK) {
      const length = Math.min(WRITE_CHUNK, size - offset);
      const wb = offset / BLOCK;
      const we = wb + blocksPerWindow;
      const meta: number[] = [];
      while (mi < metaBlocks.length && metaBlocks[mi]! < we) meta.push(metaBlocks[mi++]!);
      while (fi < layout.files.length && layout.files[fi]!.block + layout.files[fi]!.blocks <= wb)
        fi++;
      const regions: FileRegion[] = [];
      for (let k = fi; k < layout.files.length && layout.files[k]!.block < we; k++)
        regions.push(layout.files[k]!);
      while (bi < baseData.length && baseData[bi]!.offset + baseData[bi]!.length <= offset) bi++;
      const baseHas = bi < baseData.length && baseData[bi]!.offset < offset + length;
      while (
        ri < layout.freed.length &&
        layout.freed[ri]!.physical + layout.freed[ri]!.length <= wb
      )
        ri++;
      const freed: Run[] = [];
      for (let k = ri; k < layout.freed.length && layout.freed[k]!.physical < we; k++)
        freed.push(layout.freed[k]!);
      if (meta.length === 0 && regions.length === 0 && !baseHas) continue;
      if (
        options.patch === true &&
        meta.length === 0 &&
        regions.length === 0 &&
        (freed.length === 0 || options.zeroFreed !== true)
      ) {
        // The base's bytes stay as they are: its allocated chunks here still hold data.
        if (options.baseChunks === undefined) chunksComplete = false;
        for (let c = offset; c < offset + length; c += DIFF_CHUNK) {
          const kept = options.baseChunks?.get(c / DIFF_CHUNK);
          if (kept !== undefined) chunks.set(c / DIFF_CHUNK, kept);
          const end = Math.min(c + DIFF_CHUNK, offset + length);
          for (let k = bi; k < baseData.length && baseData[k]!.offset < end; k++)
            if (baseData[k]!.offset + baseData[k]!.length > c) {
              keptDataChunks++;
              break;
            }
        }
        continue;
      }
      yield { offset, length, meta, regions, baseHas, freed };
    }
  }

  const prepare = async (w: WindowPlan): Promise<Window> => {
    const wb = w.offset / BLOCK;
    let base: Buffer | null = null;
    const buf = Buffer.from(new ArrayBuffer(w.length));
    if (w.baseHas && options.base) {
      const n = Math.min(w.length, Math.max(0, options.base.virtualSize - w.offset));
      if (n > 0) await readImageInto(options.base, buf.subarray(0, n), w.offset, options.signal);
      // Without the base map's digests the base's bytes are kept to compare against.
      if (options.baseChunks === undefined) base = Buffer.from(buf);
    }
    if (options.zeroFreed === true)
      for (const r of w.freed) {
        const s = Math.max(r.physical, wb);
        const e = Math.min(r.physical + r.length, wb + blocksPerWindow);
        if (e > s) buf.fill(0, (s - wb) * BLOCK, (e - wb) * BLOCK);
      }
    for (const b of w.meta) layout.meta.get(b)!.copy(buf, (b - wb) * BLOCK);
    const tasks: WindowPiece[] = [];
    for (const r of w.regions) {
      const s = Math.max(r.block, wb);
      const e = Math.min(r.block + r.blocks, wb + blocksPerWindow);
      const fileOffset = r.offset + (s - r.block) * BLOCK;
      const length = Math.max(0, Math.min((e - s) * BLOCK, r.size - fileOffset));
      const at = (s - wb) * BLOCK;
      // The piece holding the file's start checks the whole file (reading the rest if it goes on).
      const verify = fileOffset === 0;
      tasks.push({
        path: options.objectPath(r.hash),
        hash: r.hash,
        at,
        end: (e - wb) * BLOCK,
        length,
        fileOffset,
        verify,
        size: r.size,
      });
    }
    // Even a window without file contents goes to a worker, which hashes its chunks.
    const filled = await pool.run(buf, tasks);
    return { offset: w.offset, length: w.length, ...filled, base };
  };

  const pool = new WindowPool(options.concurrency ?? 2);
  let dataChunks = 0;
  let changedChunks = 0;
  let fileSize = 0;
  try {
    for await (const w of orderedPool(windows(), 2 * pool.size + 2, prepare)) {
      if (options.signal?.aborted === true)
        throw new FerryError('FERRY_ABORTED', 'Cannot render: the operation was aborted');
      for (let c = 0, k = 0; c < w.length; c += DIFF_CHUNK, k++) {
        const digest = w.digests[k] ?? null;
        const index = (w.offset + c) / DIFF_CHUNK;
        if (digest !== null) {
          dataChunks++;
          chunks.set(index, digest);
        }
        const was = w.base?.subarray(c, c + DIFF_CHUNK);
        const changed =
          was !== undefined
            ? !w.buf.subarray(c, c + DIFF_CHUNK).equals(was)
            : options.baseChunks !== undefined
              ? digest !== (options.baseChunks.get(index) ?? null)
              : digest !== null;
        if (changed) changedChunks++;
      }
      await writer.write(w.offset, w.buf, options.signal);
      options.onProgress?.(w.offset + w.length, size);
    }
    fileSize = (await writer.finish(options.signal)).fileSize;
  } catch (error) {
    await writer.abort();
    throw error;
  } finally {
    await pool.close();
  }
  // Chunks the base had data in and this layout never visits (the base was longer) count as changed.
  if (options.base) {
    for (const e of baseData) {
      const from = Math.max(e.offset, size);
      const to = e.offset + e.length;
      if (to > from) changedChunks += Math.ceil(to / DIFF_CHUNK) - Math.floor(from / DIFF_CHUNK);
    }
  } else if (options.baseChunks !== undefined) {
    for (const index of options.baseChunks.keys()) if (index * DIFF_CHUNK >= size) changedChunks++;
  }
  return {
    dataChunks: dataChunks + keptDataChunks,
    changedChunks,
    totalChunks: Math.ceil(size / DIFF_CHUNK),
    fileSize,
    chunks: chunksComplete ? chunks : null,
  };
}

/** A window filled with file contents, and its chunks' digests. */
interface FilledWindow {
  readonly buf: Buffer;
  readonly digests: (string | null)[];
}

/** A few worker threads that fill windows with file contents (see window-worker.ts). */
class WindowPool {
  readonly size: number;
  readonly #workers: Worker[] = [];
  readonly #idle: Worker[] = [];
  readonly #queue: (() => void)[] = [];
  readonly #waiting = new Map<
    number,
    { resolve: (r: FilledWindow) => void; reject: (e: unknown) => void }
  >();
  #next = 0;
  #closing = false;
  #broken: unknown = null;

  constructor(size: number) {
    this.size = Math.max(1, Math.min(size, availableParallelism()));
    for (let i = 0; i < this.size; i++) {
      // No inherited flags: a parent run with -e or --input-type would hand them to the worker.
      const w = new Worker(new URL('./window-worker.js', import.meta.url), { execArgv: [] });
      w.on('message', (reply: WindowReply) => this.#reply(w, reply));
      const fail = (error: unknown): void => {
        for (const p of this.#waiting.values()) p.reject(error);
        this.#waiting.clear();
        this.#broken = error;
        for (const q of this.#queue.splice(0)) q();
      };
      w.on('error', fail);
      w.on('exit', (code) => {
        if (!this.#closing)
          fail(
            new FerryError(
              'FERRY_INTERNAL',
              `Cannot render: a reader thread exited (code ${code})`,
            ),
          );
      });
      this.#workers.push(w);
      this.#idle.push(w);
    }
  }

  #reply(w: Worker, reply: WindowReply): void {
    const p = this.#waiting.get(reply.id);
    this.#waiting.delete(reply.id);
    this.#idle.push(w);
    this.#queue.shift()?.();
    if (p === undefined) return;
    if (reply.error === undefined)
      p.resolve({ buf: Buffer.from(reply.buf), digests: reply.digests });
    else if (reply.error.code === 'FERRY_STORE_NOT_FOUND')
      p.reject(
        new FerryError(
          'FERRY_STORE_NOT_FOUND',
          `Cannot render: the store has no object ${reply.error.hash.slice(0, 16)}…`,
          {
            details: { id: reply.error.hash },
          },
        ),
      );
    else p.reject(corrupt(reply.error.hash));
  }

  async run(buf: Buffer, pieces: WindowPiece[]): Promise<FilledWindow> {
    while (this.#idle.length === 0 && this.#broken === null)
      await new Promise<void>((r) => this.#queue.push(r));
    if (this.#broken !== null) throw this.#broken;
    const w = this.#idle.pop()!;
    const id = this.#next++;
    const ab = buf.buffer as ArrayBuffer;
    return new Promise<FilledWindow>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      w.postMessage({ id, buf: ab, pieces }, [ab]);
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
