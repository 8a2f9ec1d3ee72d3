import { realpath } from 'node:fs/promises';
import { FerryError } from '../errors/index.js';
import { orderedPool } from '../util/ordered-pool.js';
import type { DiskEventListener } from './events.js';
import { throwIfAborted } from './file-source.js';
import { WRITE_CHUNK } from './limits.js';
import { openImage } from './open.js';
import { readImageInto } from './read-range.js';
import { writerFor } from './registry.js';
import type { DiskImage, DiskWriter, FormatName, WritableFormat } from './types.js';
import { WindowPool } from './window-pool.js';
import { WRITES_QUEUED } from './write-queue.js';

export interface ConvertOptions {
  readonly to: WritableFormat;
  /** Declared input format; refused when the bytes say otherwise. */
  readonly from?: FormatName;
  readonly compress?: boolean;
  readonly vhdSubformat?: 'fixed' | 'dynamic';
  readonly overwrite?: boolean;
  readonly allowFlatExtents?: boolean;
  readonly signal?: AbortSignal;
  readonly onEvent?: DiskEventListener;
  /**
   * Reads in flight. Memory is bounded by (readAhead + writer queue + 3) x 2 MiB
   * of window buffers (22 MiB with the defaults) plus the writer's own tables,
   * whatever the image size.
   */
  readonly readAhead?: number;
  /**
   * Write the output past the page cache (O_DIRECT) where the file system
   * allows; default true, false writes buffered (FERRY_NO_DIRECT_IO=1 also
   * turns it off). A converted image is seldom read back at once, so its
   * pages would only evict others; and on a VM whose balloon reports free
   * pages to the host (Firecracker, measured in docs/benchmarks.md) every
   * fresh page-cache page costs a host fault: buffered conversions there ran
   * 2-3x slower than direct ones, qemu-img's with them. On a host whose free
   * pages are at hand, direct writes (one at a time, each waiting for the
   * device) measured up to 30 % slower than buffered.
   */
  readonly directWrites?: boolean;
  /**
   * Read the input's large aligned runs (raw data, qcow2 cluster runs) past
   * the page cache too; default true, false reads buffered (as does
   * FERRY_NO_DIRECT_IO=1). The input is read once, so cache pages buy
   * nothing, and on such a VM each costs a host fault: qcow2 -> raw went
   * from 3.3-3.4 s to 2.2-2.4 s (docs/benchmarks.md). Small or unaligned
   * reads (headers, tables, compressed grains) stay buffered.
   */
  readonly directReads?: boolean;
}

export interface ConvertResult {
  readonly from: FormatName;
  readonly to: WritableFormat;
  readonly virtualSize: number;
  readonly fileSize: number;
  /** Bytes read from the source's data extents (in 2 MiB windows). */
  readonly dataBytes: number;
  readonly seconds: number;
}

const DEFAULT_READ_AHEAD = 4;

/** A WRITE_CHUNK window that holds data, with the data ranges inside it (virtual offsets). */
export interface DataWindow {
  readonly offset: number;
  readonly ranges: Array<{ offset: number; length: number }>;
}

/** The WRITE_CHUNK windows that hold any data extent, in order, with their data ranges. */
export async function* dataWindows(
  image: DiskImage,
  signal?: AbortSignal,
): AsyncGenerator<DataWindow> {
  let current: DataWindow | undefined;
  for await (const e of image.extents(signal)) {
    if (e.kind !== 'data') continue;
    let pos = e.offset;
    const end = e.offset + e.length;
    while (pos < end) {
      const w = Math.floor(pos / WRITE_CHUNK) * WRITE_CHUNK;
      const upto = Math.min(end, w + WRITE_CHUNK);
      if (current !== undefined && current.offset !== w) {
        yield current;
        current = undefined;
      }
      current ??= { offset: w, ranges: [] };
      current.ranges.push({ offset: pos, length: upto - pos });
      pos = upto;
    }
  }
  if (current !== undefined) yield current;
}

/**
 * Reads a window: one read when data fills it and the image cannot read in
 * place, else only its data ranges, each straight into its place in a window
 * buffer (one from `pool` when given, returned as `into`), with zeros written
 * only into the gaps between them.
 */
async function readWindow(
  image: DiskImage,
  w: DataWindow,
  pool: WindowPool | undefined,
  signal?: AbortSignal,
): Promise<{ buf: Buffer; into: Buffer | undefined }> {
  const len = Math.min(WRITE_CHUNK, image.virtualSize - w.offset);
  const dataLen = w.ranges.reduce((s, r) => s + r.length, 0);
  if (dataLen === len && image.readInto === undefined) {
    return { buf: await image.read(w.offset, len, signal), into: undefined };
  }
  const into = await pool?.take();
  const buf = into === undefined ? Buffer.allocUnsafe(len) : into.subarray(0, len);
  try {
    let cursor = w.offset;
    const reads: Promise<void>[] = [];
    for (const r of w.ranges) {
      if (r.offset > cursor) buf.fill(0, cursor - w.offset, r.offset - w.offset);
      cursor = r.offset + r.length;
      reads.push(
        readImageInto(
          image,
          buf.subarray(r.offset - w.offset, cursor - w.offset),
          r.offset,
          signal,
        ),
      );
    }
    if (cursor < w.offset + len) buf.fill(0, cursor - w.offset);
    await Promise.all(reads);
  } catch (error) {
    if (into !== undefined) pool?.give(into);
    throw error;
  }
  return { buf, into };
}

/** Streams every data window of `image` into `writer`, then finishes it. */
export async function copyImage(
  image: DiskImage,
  writer: DiskWriter,
  options: Pick<ConvertOptions, 'signal' | 'onEvent' | 'readAhead'> = {},
): Promise<{ fileSize: number; dataBytes: number }> {
  const { signal, onEvent } = options;
  let dataBytes = 0;
  const readAhead = options.readAhead ?? DEFAULT_READ_AHEAD;
  // Window buffers are reused when the writer says when it lets go of them:
  // one per read in flight, per write queued, and the one being handed over.
  const pool =
    writer.released === undefined
      ? undefined
      : new WindowPool(WRITE_CHUNK, readAhead + WRITES_QUEUED + 3);
  try {
    const reads = orderedPool(dataWindows(image, signal), readAhead, async (w) => ({
      off: w.offset,
      ...(await readWindow(image, w, pool, signal)),
    }));
    for await (const { off, buf, into } of reads) {
      throwIfAborted(signal);
      try {
        await writer.write(off, buf, signal);
      } finally {
        if (into !== undefined && pool !== undefined) {
          void writer.released?.().then(() => pool.give(into));
        }
      }
      dataBytes += buf.length;
      onEvent?.({
        type: 'progress',
        operation: 'convert',
        done: off + buf.length,
        total: image.virtualSize,
      });
    }
    const result = await writer.finish(signal);
    onEvent?.({
      type: 'progress',
      operation: 'convert',
      done: image.virtualSize,
      total: image.virtualSize,
    });
    return { fileSize: result.fileSize, dataBytes };
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

/** Converts the image at `input` into a new file at `output`. */
export async function convertImage(
  input: string,
  output: string,
  options: ConvertOptions,
): Promise<ConvertResult> {
  const started = performance.now();
  const inReal = await realpath(input).catch(() => input);
  const outReal = await realpath(output).catch(() => output);
  if (inReal === outReal) {
    throw new FerryError('FERRY_USAGE', `Cannot convert ${input}: the output is the input`, {
      details: { input, output },
    });
  }
  const image = await openImage(input, {
    ...(options.from === undefined ? {} : { format: options.from }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    allowFlatExtents: options.allowFlatExtents ?? false,
    directReads: options.directReads ?? true,
  });
  try {
    options.onEvent?.({
      type: 'convert-start',
      from: image.format,
      to: options.to,
      virtualSize: image.virtualSize,
    });
    const writer = await writerFor(options.to).create(output, {
      virtualSize: image.virtualSize,
      compress: options.compress ?? false,
      overwrite: options.overwrite ?? false,
      directWrites: options.directWrites ?? true,
      ...(options.vhdSubformat === undefined ? {} : { vhdSubformat: options.vhdSubformat }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const { fileSize, dataBytes } = await copyImage(image, writer, options);
    const seconds = (performance.now() - started) / 1000;
    options.onEvent?.({ type: 'convert-done', fileSize, dataBytes, seconds });
    return {
      from: image.format,
      to: options.to,
      virtualSize: image.virtualSize,
      fileSize,
      dataBytes,
      seconds,
    };
  } finally {
    await image.close();
  }
}
