import { S3Error } from './s3-error.js';

/** An inclusive byte range of an object. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Parses a Range header against an object of `size` bytes: `bytes=a-b`,
 * `bytes=a-`, `bytes=-n`. A header S3 would ignore (not bytes, several
 * ranges, not numbers) gives undefined: the whole object. A range that
 * starts past the end is InvalidRange (416).
 */
export function parseRange(text: string | undefined, size: number): ByteRange | undefined {
  if (text === undefined) return undefined;
  const m = /^bytes=(\d{0,16})-(\d{0,16})$/.exec(text.trim());
  if (m === null) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) throw unsatisfiable(size);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined;
  }
  if (start >= size) throw unsatisfiable(size);
  return { start, end };
}

function unsatisfiable(size: number): S3Error {
  return new S3Error(
    416,
    'InvalidRange',
    'The requested range is not satisfiable',
    { RangeRequested: '', ActualObjectSize: String(size) },
    { 'content-range': `bytes */${size}` },
  );
}
