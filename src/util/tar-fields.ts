/**
 * The tar header field codecs every tar reader shares (the OVA walker in
 * disk, the streaming reader in store). Each caller turns a failure into its
 * own coded error.
 */

/** Sum of the 512 header bytes with the checksum field counted as spaces: [unsigned, signed]. */
export function tarHeaderChecksums(block: Buffer): [number, number] {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b >= 0x80 ? b - 256 : b;
  }
  return [unsigned, signed];
}

/** Why a numeric field could not be read. */
export type TarNumberProblem = 'negative' | 'past-2^53' | 'not-octal' | 'too-large';

/**
 * A numeric field: octal digits (NUL/space padded), or GNU base-256 (high bit
 * of the first byte set). Negatives and values past 2^53 are refused.
 */
export function decodeTarNumber(raw: Buffer): number | TarNumberProblem {
  const first = raw[0] ?? 0;
  if ((first & 0x80) !== 0) {
    if ((first & 0x40) !== 0) return 'negative';
    let v = BigInt(first & 0x3f);
    for (let i = 1; i < raw.length; i++) v = (v << 8n) | BigInt(raw[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) return 'past-2^53';
    return Number(v);
  }
  const text = raw
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return 'not-octal';
  const v = Number.parseInt(text, 8);
  return Number.isSafeInteger(v) ? v : 'too-large';
}
