/**
 * The disk VM Import gets: a render (raw) converted to a streamOptimized
 * VMDK, the format VM Import documents and the smallest to upload (only
 * allocated grains, deflated). The file appears only once complete
 * (convertImage writes beside it and renames).
 */
import { basename, extname, join } from 'node:path';
import { convertImage } from '../../disk/index.js';

export interface PreparedDisk {
  readonly path: string;
  readonly format: 'vmdk';
  /** Bytes of the VMDK file (what is uploaded). */
  readonly bytes: number;
  readonly virtualSize: number;
  readonly seconds: number;
}

/** Writes OUTDIR/NAME.vmdk from the raw render at `rawPath` (replacing one left by an earlier run). */
export async function prepareImportDisk(
  rawPath: string,
  outDir: string,
  signal?: AbortSignal,
): Promise<PreparedDisk> {
  const name = basename(rawPath, extname(rawPath));
  const path = join(outDir, `${name}.vmdk`);
  const r = await convertImage(rawPath, path, {
    to: 'vmdk',
    from: 'raw',
    overwrite: true,
    ...(signal === undefined ? {} : { signal }),
  });
  return {
    path,
    format: 'vmdk',
    bytes: r.fileSize,
    virtualSize: r.virtualSize,
    seconds: r.seconds,
  };
}
