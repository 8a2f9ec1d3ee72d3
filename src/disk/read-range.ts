import { FerryError } from '../errors/index.js';
import type { DiskImage } from './types.js';

/** Throws FERRY_READ_OUT_OF_RANGE unless [offset, offset+length) lies inside the virtual disk. */
export function readOutOfRange(
  image: Pick<DiskImage, 'virtualSize' | 'format'>,
  offset: number,
  length: number,
): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > image.virtualSize
  ) {
    throw new FerryError(
      'FERRY_READ_OUT_OF_RANGE',
      `Cannot read ${image.format} image: bytes ${offset}+${length} lie outside the virtual disk (${image.virtualSize})`,
      { details: { offset, length, virtualSize: image.virtualSize } },
    );
  }
}

/** Fills `target` from `image` at `offset`: in place where the image can, else through a copy. */
export async function readImageInto(
  image: DiskImage,
  target: Buffer,
  offset: number,
  signal?: AbortSignal,
): Promise<void> {
  if (image.readInto !== undefined) return image.readInto(target, offset, signal);
  (await image.read(offset, target.length, signal)).copy(target);
}
