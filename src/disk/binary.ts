import { type ErrorCode, FerryError } from '../errors/index.js';

/**
 * Checked field decoding for hostile images: every 64-bit field goes through
 * here and is refused when it does not fit a JS number exactly.
 */

function checkBounds(buf: Buffer, offset: number, size: number, what: string): void {
  if (offset < 0 || offset + size > buf.length) {
    throw new FerryError(
      'FERRY_IMAGE_TRUNCATED',
      `Cannot read ${what}: the structure is truncated`,
      {
        details: { offset, size, available: buf.length },
      },
    );
  }
}

/** Reads an unsigned 64-bit big-endian field as a safe integer or throws `code`. */
export function u64be(
  buf: Buffer,
  offset: number,
  what: string,
  code: ErrorCode = 'FERRY_IMAGE_TOO_LARGE',
): number {
  checkBounds(buf, offset, 8, what);
  return toSafe(buf.readBigUInt64BE(offset), what, code);
}

/** Reads an unsigned 64-bit little-endian field as a safe integer or throws `code`. */
export function u64le(
  buf: Buffer,
  offset: number,
  what: string,
  code: ErrorCode = 'FERRY_IMAGE_TOO_LARGE',
): number {
  checkBounds(buf, offset, 8, what);
  return toSafe(buf.readBigUInt64LE(offset), what, code);
}

export function toSafe(
  value: bigint,
  what: string,
  code: ErrorCode = 'FERRY_IMAGE_TOO_LARGE',
): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new FerryError(code, `Cannot use ${what}: the value ${value} exceeds 2^53`, {
      details: { field: what, value: value.toString() },
    });
  }
  return Number(value);
}

/** Throws FERRY_IMAGE_CORRUPT unless `cond`. */
export function ensure(
  cond: boolean,
  code: ErrorCode,
  message: string,
  details?: Record<string, string | number | boolean | null>,
): asserts cond {
  if (!cond) throw new FerryError(code, message, details === undefined ? {} : { details });
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export function alignDown(n: number, a: number): number {
  return Math.floor(n / a) * a;
}
