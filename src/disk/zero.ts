const ZEROS = Buffer.alloc(2 * 1024 * 1024);

/** Zero-detection unit for sparse output (qemu-img's -S 4k default). */
export const SPARSE_UNIT = 4096;

/** True when every byte of `buf` is zero (memcmp against a shared zero page). */
export function isZero(buf: Buffer): boolean {
  let off = 0;
  while (off < buf.length) {
    const n = Math.min(ZEROS.length, buf.length - off);
    if (!buf.subarray(off, off + n).equals(ZEROS.subarray(0, n))) return false;
    off += n;
  }
  return true;
}

/** A fresh zero-filled buffer. */
export function zeros(length: number): Buffer {
  return Buffer.alloc(length);
}

/**
 * The runs of `buf` that are not all zero, in `unit`-byte steps, as [from, to)
 * pairs: what a sparse writer stores. Data units nearly always have a
 * non-zero first or last byte, which skips the full compare.
 */
export function dataRuns(buf: Buffer, unit = SPARSE_UNIT): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  if (isZero(buf)) return runs;
  let start = -1;
  for (let u = 0; u < buf.length; u += unit) {
    const end = Math.min(u + unit, buf.length);
    const zero = buf[u] === 0 && buf[end - 1] === 0 && isZero(buf.subarray(u, end));
    if (!zero && start < 0) start = u;
    if (zero && start >= 0) {
      runs.push([start, u]);
      start = -1;
    }
  }
  if (start >= 0) runs.push([start, buf.length]);
  return runs;
}
