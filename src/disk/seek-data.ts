import type { ByteRange } from './byte-source.js';

/**
 * Data ranges of an open file from SEEK_DATA/SEEK_HOLE. Returns undefined
 * when the platform cannot tell (the caller then treats the range as data).
 * Replaced by the native binding when it is built.
 */
export function seekDataRanges(
  _fd: number,
  _offset: number,
  _length: number,
): ByteRange[] | undefined {
  return undefined;
}
