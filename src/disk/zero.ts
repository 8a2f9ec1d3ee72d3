const ZEROS = Buffer.alloc(2 * 1024 * 1024);

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
