/**
 * Formats a 16-byte GUID as stored by GPT and Microsoft (the first three
 * fields little-endian, the rest as bytes), lowercase with dashes.
 */
export function formatGuid(buf: Buffer, offset: number): string {
  const hex = (from: number, to: number, reverse: boolean): string => {
    const bytes = [...buf.subarray(offset + from, offset + to)];
    if (reverse) bytes.reverse();
    return bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return [
    hex(0, 4, true),
    hex(4, 6, true),
    hex(6, 8, true),
    hex(8, 10, false),
    hex(10, 16, false),
  ].join('-');
}

/** True when the 16 bytes at `offset` are all zero (an unused GPT entry). */
export function isZeroGuid(buf: Buffer, offset: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[offset + i] !== 0) return false;
  return true;
}
