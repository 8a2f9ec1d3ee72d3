/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as used by zlib, GPT
 * headers and entry arrays, and (with its own seed, see crc32Raw) LVM2 labels.
 * Node 20 has no zlib.crc32, so this is a plain 256-entry table.
 */

const POLY = 0xedb88320;

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * Runs the CRC register over `data` from `state`, with no initial or final
 * inversion. LVM2 uses this form with the seed 0xF597A6CF.
 */
export function crc32Raw(data: Uint8Array, state: number): number {
  const t = TABLE;
  let c = state >>> 0;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/**
 * CRC-32 of `data`, identical to zlib's crc32(). Pass a previous result as
 * `previous` to continue over concatenated input.
 */
export function crc32(data: Uint8Array, previous = 0): number {
  return ~crc32Raw(data, ~previous >>> 0) >>> 0;
}
