import { promisify } from 'node:util';
import { inflate } from 'node:zlib';
import { FerryError } from '../../../errors/index.js';
import { GRAIN_MARKER_HEADER } from './constants.js';

const inflateAsync = promisify(inflate);

export function badGrain(
  name: string,
  grain: number,
  reason: string,
  details: Record<string, number> = {},
  cause?: unknown,
): FerryError {
  return new FerryError(
    'FERRY_VMDK_BAD_GRAIN',
    `Cannot read vmdk image ${name}: grain ${grain} ${reason}`,
    {
      details: { grain, ...details },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

/** What a compressed grain must inflate to: the grain, or what is left of the disk for the last one. */
export interface GrainShape {
  readonly grain: number;
  /** The grain's first sector (the LBA its marker must carry). */
  readonly lba: number;
  readonly grainBytes: number;
  /** Bytes of the disk in this grain (grainBytes except for a partial last grain). */
  readonly validBytes: number;
}

/**
 * Parses the grain marker at the start of `buf` (u64 LBA, u32 size) and
 * returns the compressed bytes it announces. The LBA must be the grain's own,
 * the size non-zero, at most two grains, and inside `buf`.
 */
export function markerPayload(buf: Buffer, shape: GrainShape, name: string): Buffer {
  if (buf.length < GRAIN_MARKER_HEADER) {
    throw badGrain(name, shape.grain, 'has a grain marker past the end of the file');
  }
  const lba = buf.readBigUInt64LE(0);
  if (lba !== BigInt(shape.lba)) {
    throw badGrain(name, shape.grain, `has a grain marker for sector ${lba}, not ${shape.lba}`, {
      expected: shape.lba,
    });
  }
  const size = buf.readUInt32LE(8);
  if (size === 0 || size > 2 * shape.grainBytes) {
    throw badGrain(name, shape.grain, `has a grain marker with compressed size ${size}`, { size });
  }
  if (GRAIN_MARKER_HEADER + size > buf.length) {
    throw badGrain(name, shape.grain, 'has compressed data past the end of the file', { size });
  }
  return buf.subarray(GRAIN_MARKER_HEADER, GRAIN_MARKER_HEADER + size);
}

/**
 * Inflates one zlib (RFC 1950) grain on the thread pool. Output is capped at
 * one grain, so a decompression bomb stops at once; it must be exactly one
 * grain, or exactly the valid part of the last, partial grain (qemu-img
 * writes it short). Returns a grain-sized or validBytes-sized buffer.
 */
export async function inflateGrain(data: Buffer, shape: GrainShape, name: string): Promise<Buffer> {
  let out: Buffer;
  try {
    // One output chunk of a whole grain: no reassembly copy.
    out = await inflateAsync(data, {
      maxOutputLength: shape.grainBytes,
      chunkSize: shape.grainBytes,
    });
  } catch (error) {
    throw badGrain(name, shape.grain, 'does not inflate to one grain', {}, error);
  }
  if (out.length !== shape.grainBytes && out.length !== shape.validBytes) {
    throw badGrain(name, shape.grain, `inflates to ${out.length} bytes, not ${shape.grainBytes}`, {
      length: out.length,
    });
  }
  return out;
}
