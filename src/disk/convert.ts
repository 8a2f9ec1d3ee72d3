import { realpath } from 'node:fs/promises';
import { FerryError } from '../errors/index.js';
import { orderedPool } from '../util/ordered-pool.js';
import type { DiskEventListener } from './events.js';
import { throwIfAborted } from './file-source.js';
import { WRITE_CHUNK } from './limits.js';
import { openImage } from './open.js';
import { writerFor } from './registry.js';
import type { DiskImage, DiskWriter, FormatName, WritableFormat } from './types.js';

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
   * Reads in flight. Memory is bounded by (readAhead + writer queue) x 2 MiB;
   * with the defaults, under 64 MiB whatever the image size.
   */
  readonly readAhead?: number;
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

/** Offsets of the WRITE_CHUNK windows that hold any data extent, in order. */
export async function* dataWindows(image: DiskImage, signal?: AbortSignal): AsyncGenerator<number> {
  let last = -1;
  for await (const e of image.extents(signal)) {
    if (e.kind !== 'data') continue;
    const first = Math.floor(e.offset / WRITE_CHUNK);
    const end = Math.ceil((e.offset + e.length) / WRITE_CHUNK);
    for (let w = Math.max(first, last + 1); w < end; w++) {
      last = w;
      yield w * WRITE_CHUNK;
    }
  }
}

/** Streams every data window of `image` into `writer`, then finishes it. */
export async function copyImage(
  image: DiskImage,
  writer: DiskWriter,
  options: Pick<ConvertOptions, 'signal' | 'onEvent' | 'readAhead'> = {},
): Promise<{ fileSize: number; dataBytes: number }> {
  const { signal, onEvent } = options;
  let dataBytes = 0;
  try {
    const reads = orderedPool(
      dataWindows(image, signal),
      options.readAhead ?? DEFAULT_READ_AHEAD,
      async (off) => {
        const len = Math.min(WRITE_CHUNK, image.virtualSize - off);
        return { off, buf: await image.read(off, len, signal) };
      },
    );
    for await (const { off, buf } of reads) {
      throwIfAborted(signal);
      await writer.write(off, buf, signal);
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
