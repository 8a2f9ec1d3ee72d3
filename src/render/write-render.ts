import { unlink } from 'node:fs/promises';
import { createRawPatch, type DiskImage, type WritableFormat, writerFor } from '../disk/index.js';
import { writeFileAtomic } from '../store/local-store.js';
import { chunksToJson } from './chunk-digest.js';
import { type Base, mapPathOf } from './load-base.js';
import { type FsLayout, type WriteFsResult, writeFsImage } from './write-fs-image.js';

export interface WriteRenderOptions {
  readonly out: string;
  readonly format: WritableFormat;
  /** Where file contents are: the path of a local store object by its hash. */
  readonly objectPath: (hash: string) => string;
  /** The previous render: its image (null when only its map is at hand) and its chunk digests. */
  readonly base?: {
    readonly path: string;
    readonly image: DiskImage | null;
    readonly chunks?: ReadonlyMap<number, string>;
  };
  readonly overwrite?: boolean;
  readonly zeroFreed?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Writes a laid-out image and then its block map beside it (the base for
 * the next render); if the map cannot be written the image goes too. A raw
 * render over a raw base on a file system with reflinks (XFS, btrfs) starts
 * as a clone of the base, so only the windows that change are read and
 * written; elsewhere every window is written, the base's bytes read where
 * nothing new lands.
 * With only the base's map, every block is written and the chunk digests
 * the map keeps decide which chunks changed. The new map records the
 * digest of every chunk holding data.
 */
export async function writeRender(
  layout: FsLayout,
  map: unknown,
  options: WriteRenderOptions,
): Promise<WriteFsResult & { readonly map: string }> {
  const { out, format, base, signal } = options;
  const writerOptions = {
    virtualSize: layout.blocksCount * 4096,
    // A render is read once, later (publish reads it past the page cache too):
    // filling page-cache pages with it would only cost system time.
    directWrites: true,
    ...(options.overwrite === undefined ? {} : { overwrite: options.overwrite }),
    ...(signal === undefined ? {} : { signal }),
  };
  const image = base?.image ?? null;
  const clone =
    format === 'raw' && base !== undefined && image !== null && image.format === 'raw'
      ? await createRawPatch(out, base.path, writerOptions)
      : null;
  const patch = clone !== null;
  const writer = clone ?? (await writerFor(format).create(out, writerOptions));
  const written = await writeFsImage(layout, writer, {
    objectPath: options.objectPath,
    ...(image === null ? {} : { base: image }),
    ...(base?.chunks === undefined ? {} : { baseChunks: base.chunks }),
    patch,
    ...(options.zeroFreed === undefined ? {} : { zeroFreed: options.zeroFreed }),
    ...(signal === undefined ? {} : { signal }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  const mapPath = mapPathOf(out);
  try {
    const withChunks =
      written.chunks === null
        ? map
        : { ...(map as object), chunkDigests: chunksToJson(written.chunks) };
    await writeFileAtomic(mapPath, `${JSON.stringify(withChunks)}\n`);
  } catch (error) {
    await unlink(out).catch(() => {});
    throw error;
  }
  return { ...written, map: mapPath };
}

/** What a render command was asked for that writeRender needs. */
export interface RenderOutputOptions {
  readonly out: string;
  readonly format?: WritableFormat;
  /** The base as given (an image, or a map alone). */
  readonly base?: string;
  readonly overwrite?: boolean;
  readonly zeroFreed?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

/** writeRender's options for a render of a local store's revision over an optional loaded base. */
export function writeOptionsFor(
  objectPath: (hash: string) => string,
  options: RenderOutputOptions,
  base: Base<unknown> | undefined,
): WriteRenderOptions {
  return {
    out: options.out,
    format: options.format ?? 'raw',
    objectPath,
    ...(base === undefined || options.base === undefined
      ? {}
      : {
          base: {
            path: options.base,
            image: base.image,
            ...(base.chunks === undefined ? {} : { chunks: base.chunks }),
          },
        }),
    ...(options.overwrite === undefined ? {} : { overwrite: options.overwrite }),
    ...(options.zeroFreed === undefined ? {} : { zeroFreed: options.zeroFreed }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  };
}
