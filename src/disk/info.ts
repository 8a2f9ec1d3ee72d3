import { allocatedBytes } from './extents.js';
import type { DiskImage, FormatDetails, FormatName, ImageWarning } from './types.js';

export interface ImageInfo {
  readonly format: FormatName;
  readonly virtualSize: number;
  /** Bytes of the stored file. */
  readonly fileSize: number;
  /** Bytes the allocation map calls data. */
  readonly allocatedBytes: number;
  readonly details: FormatDetails;
  readonly warnings: readonly ImageWarning[];
}

/** Facts about an open image, from metadata only (no guest data is read). */
export async function imageInfo(image: DiskImage, signal?: AbortSignal): Promise<ImageInfo> {
  return {
    format: image.format,
    virtualSize: image.virtualSize,
    fileSize: image.source.size,
    allocatedBytes: await allocatedBytes(image.extents(signal)),
    details: image.details(),
    warnings: image.warnings,
  };
}
