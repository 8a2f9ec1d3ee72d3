export type { ByteRange, ByteSource } from './byte-source.js';
export { type CompareResult, compareImages } from './compare.js';
export { type ConvertOptions, type ConvertResult, convertImage, copyImage } from './convert.js';
export { type Detection, detectFormat } from './detect.js';
export { DirectHandle, writeThrough } from './direct-io.js';
export type { DiskEvent, DiskEventListener } from './events.js';
export { allocatedBytes, collectExtents } from './extents.js';
export { FileSource } from './file-source.js';
export { createRawPatch } from './formats/raw/index.js';
export { type ImageInfo, imageInfo } from './info.js';
export { LIMITS, WRITE_CHUNK } from './limits.js';
export { type OpenImageOptions, openImage, openImageSource } from './open.js';
export { isFormatName, readerFor, writerFor } from './registry.js';
export { BufferSource, SliceSource } from './slice-source.js';
export {
  type DiskImage,
  type DiskWriter,
  type Extent,
  type ExtentKind,
  FORMAT_NAMES,
  type FormatName,
  type FormatReader,
  type FormatWriter,
  type ImageWarning,
  type OpenOptions,
  WRITABLE_FORMATS,
  type WritableFormat,
  type WriteResult,
  type WriterOptions,
} from './types.js';
