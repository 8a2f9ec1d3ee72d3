import {
  createRawPatch,
  type DiskImage,
  type DiskWriter,
  type WritableFormat,
  writerFor,
} from '../disk/index.js';

/**
 * The writer a render writes through. A raw render over a raw base starts
 * as a copy of the base (a reflink where the filesystem has them), so only
 * the windows that change are read and written: `patch` says so.
 */
export async function openRenderOutput(
  out: string,
  format: WritableFormat,
  virtualSize: number,
  base: { readonly path: string; readonly image: DiskImage } | undefined,
  overwrite: boolean | undefined,
  signal: AbortSignal | undefined,
): Promise<{ writer: DiskWriter; patch: boolean }> {
  const options = {
    virtualSize,
    ...(overwrite === undefined ? {} : { overwrite }),
    ...(signal === undefined ? {} : { signal }),
  };
  if (format === 'raw' && base !== undefined && base.image.format === 'raw')
    return { writer: await createRawPatch(out, base.path, options), patch: true };
  return { writer: await writerFor(format).create(out, options), patch: false };
}
