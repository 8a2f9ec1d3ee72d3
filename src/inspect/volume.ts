import type { DiskImage } from '../disk/index.js';
import { FerryError } from '../errors/index.js';

/**
 * Random-access bytes of a volume: a partition, or the whole disk. Inspection
 * reads only through volumes, so every byte it reads is bounds-checked and counted.
 */
export interface Volume {
  /** Byte offset of the volume within the disk. */
  readonly start: number;
  readonly size: number;
  /** Reads exactly `length` bytes; throws FERRY_READ_OUT_OF_RANGE past the end of the volume. */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer>;
}

/** Counts the bytes inspection reads (the benchmark's "bytes read" figure). */
export class ReadCounter {
  bytes = 0;
  reads = 0;
}

/** A volume over a byte range of a disk image. */
export function volumeOf(
  image: Pick<DiskImage, 'read' | 'virtualSize'>,
  start: number,
  size: number,
  counter?: ReadCounter,
): Volume {
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(size) ||
    start < 0 ||
    size < 0 ||
    start + size > image.virtualSize
  ) {
    throw new FerryError(
      'FERRY_IMAGE_CORRUPT',
      `Cannot open volume at ${start}+${size}: it lies outside the disk (${image.virtualSize})`,
      {
        details: { start, size, virtualSize: image.virtualSize },
      },
    );
  }
  return {
    start,
    size,
    read(offset, length, signal) {
      if (
        !Number.isSafeInteger(offset) ||
        !Number.isSafeInteger(length) ||
        offset < 0 ||
        length < 0 ||
        offset + length > size
      ) {
        return Promise.reject(
          new FerryError(
            'FERRY_READ_OUT_OF_RANGE',
            `Cannot read volume bytes ${offset}+${length}: the volume is ${size} bytes`,
            {
              details: { offset, length, size },
            },
          ),
        );
      }
      if (counter !== undefined) {
        counter.bytes += length;
        counter.reads++;
      }
      return image.read(start + offset, length, signal);
    },
  };
}

/** A volume over an in-memory buffer (tests, fuzzing). */
export function bufferVolume(buf: Buffer): Volume {
  return volumeOf(
    {
      virtualSize: buf.length,
      read: async (offset, length) => Buffer.from(buf.subarray(offset, offset + length)),
    },
    0,
    buf.length,
  );
}
