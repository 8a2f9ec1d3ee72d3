import { FerryError } from '../errors/index.js';
import type { ByteSource } from './byte-source.js';
import { assertUnambiguous, detectFormat } from './detect.js';
import { FileSource, openSiblingFile } from './file-source.js';
import { readerFor } from './registry.js';
import type { DiskImage, FormatName, OpenOptions } from './types.js';

export interface OpenImageOptions extends OpenOptions {
  /**
   * The format the caller expects. It must agree with what the bytes say:
   * a "raw" file that starts with a qcow2 header is refused, because treating
   * it either way is how format-confusion attacks work.
   */
  readonly format?: FormatName;
  /** Large aligned reads bypass the page cache: for an image read once, end to end. */
  readonly directReads?: boolean;
}

/** Opens an image over any byte source, detecting its format by magic bytes. */
export async function openImageSource(
  source: ByteSource,
  options: OpenImageOptions = {},
): Promise<DiskImage> {
  const detection = await detectFormat(source, options.signal);
  assertUnambiguous(source, detection);
  if (options.format !== undefined && options.format !== detection.format) {
    throw new FerryError(
      'FERRY_FORMAT_MISMATCH',
      `Cannot open ${source.name} as ${options.format}: its bytes say ${detection.format}`,
      {
        details: { declared: options.format, detected: detection.format },
        hint:
          options.format === 'raw'
            ? "A raw disk that begins with another format's header is a known attack on image tools; ferry refuses it"
            : 'Drop --from to use the detected format',
      },
    );
  }
  return readerFor(detection.format).open(source, options);
}

/** Opens an image file read-only. The caller closes the image (which closes the file). */
export async function openImage(path: string, options: OpenImageOptions = {}): Promise<DiskImage> {
  const source = await FileSource.open(
    path,
    options.directReads === true ? { directReads: true } : {},
  );
  try {
    return await openImageSource(source, {
      ...options,
      openSibling: (name) => openSiblingFile(path, name),
    });
  } catch (error) {
    await source.close();
    throw error;
  }
}
