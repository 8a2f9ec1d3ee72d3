/**
 * The validating step: open the source object with ferry's disk readers,
 * hold the declared format against the bytes, and (ImportImage) run ferry
 * inspect for the aws-import target. Failures carry AWS's own words: the
 * messages inspect's aws-import findings record, or those of AWS's
 * troubleshooting page for the disk-level faults the readers find.
 */
import { type DiskImage, detectFormat, FileSource, openImageSource } from '../../disk/index.js';
import { isFerryError } from '../../errors/index.js';
import { type InspectReport, inspectImage } from '../../inspect/index.js';
import type { ObjectFile } from './dependencies.js';
import { ImportFailure } from './import-failure.js';
import type { ImportFormat, ImportKind } from './task-record.js';

export interface ValidatedDisk {
  readonly image: DiskImage;
  readonly format: ImportFormat;
  /** Null for ImportSnapshot, which AWS does not inspect. */
  readonly report: InspectReport | null;
}

const IMPORTABLE: readonly string[] = ['ova', 'vmdk', 'vhd', 'vhdx', 'raw'];

/** Findings that concern the disk itself, which ImportSnapshot is judged by too. */
const DISK_LEVEL = new Set([
  'VMDK_NOT_STREAM_OPTIMIZED',
  'OVA_LAYOUT',
  'FORMAT_NOT_IMPORTABLE',
  'DISK_TOO_LARGE',
  'DISK_EMPTY',
]);

/**
 * AWS's words for a disk the readers refuse. A VMDK grain that inflates to
 * the wrong size is AWS's "Uncompressed data has invalid length"; a VHD
 * whose footers disagree, "Footers not identical"; any other broken
 * structure of a format is that format's "Unsupported … File Format" (AWS
 * says it for VMDKs; ferry says it alike for the other formats).
 */
function readerFailure(error: unknown, format: string): ImportFailure {
  const code = isFerryError(error) ? error.code : '';
  if (code === 'FERRY_VMDK_BAD_GRAIN')
    return new ImportFailure('ClientError: Uncompressed data has invalid length');
  if (code === 'FERRY_VHD_FOOTER_MISMATCH' || code === 'FERRY_VHD_DIFFERENCING')
    return new ImportFailure('ClientError: Footers not identical');
  if (format === 'ova')
    return new ImportFailure('ClientError: Disk validation failed [Unsupported OVA format]');
  return new ImportFailure(
    `ClientError: Disk validation failed [Unsupported ${format.toUpperCase()} File Format]`,
  );
}

/**
 * AWS's words for a reader error met while converting (a broken grain past
 * what validation read), or undefined for errors that are not the image's.
 */
export function conversionFailure(error: unknown, format: string): ImportFailure | undefined {
  if (!isFerryError(error)) return undefined;
  const own = /^FERRY_(VMDK|VHD|VHDX|QCOW2|VDI|OVA|IMAGE|READ)_/.test(error.code);
  return own ? readerFailure(error, format) : undefined;
}

/**
 * Opens and judges the object. On success the caller owns the image (and
 * closes it); on failure everything opened is closed.
 */
export async function validateDisk(
  object: ObjectFile,
  declared: ImportFormat | null,
  kind: ImportKind,
  signal: AbortSignal,
): Promise<ValidatedDisk> {
  const source = await FileSource.open(object.path);
  let image: DiskImage | undefined;
  try {
    const detection = await detectFormat(source, signal);
    const detected = detection.format;
    if (declared !== null && declared !== detected) throw readerFailure(null, declared);
    if (!IMPORTABLE.includes(detected) || detection.matches.length > 1)
      throw new ImportFailure(
        'Error Code: InvalidParameter, Error Message: Message: Parameter disk-image-size=0 has an invalid format',
      );
    if (kind === 'snapshot' && detected === 'ova')
      throw new ImportFailure('ClientError: Disk validation failed [Unsupported OVA format]');
    try {
      // No openSibling: an object is one file; a VMDK naming other extents is refused.
      image = await openImageSource(source, { format: detected, signal });
    } catch (error) {
      if (signal.aborted) throw error;
      throw readerFailure(error, detected);
    }
    let report: InspectReport;
    try {
      report = await inspectImage(image, object.path, { targets: ['aws-import'], signal });
    } catch (error) {
      if (signal.aborted || !isFerryError(error)) throw error;
      throw readerFailure(error, detected);
    }
    const blocking = report.findings.filter(
      (f) =>
        f.severity === 'error' &&
        f.targets.includes('aws-import') &&
        (kind === 'image' || DISK_LEVEL.has(f.code)),
    );
    // AWS stops at its first objection; prefer one it words itself.
    const first = blocking.find((f) => f.cloudMessage !== null) ?? blocking[0];
    if (first !== undefined)
      throw new ImportFailure(first.cloudMessage ?? `ClientError: ${first.message}`);
    return { image, format: detected as ImportFormat, report: kind === 'image' ? report : null };
  } catch (error) {
    if (image !== undefined) await image.close();
    else await source.close();
    throw error;
  }
}
