import type { OpenImageOptions } from '../../src/disk/index.js';
import type { ErrorCode } from '../../src/errors/index.js';

/**
 * One hostile input. `files` maps file names to bytes; the first entry is the
 * image that is opened (the others sit beside it, e.g. a VMDK extent, or a
 * decoy that must never be opened). Opening it, walking its allocation map and
 * reading all of it must fail with `expect` (one of the codes), quickly, with
 * bounded memory.
 */
export interface MalformedCase {
  readonly name: string;
  readonly files: Readonly<Record<string, Buffer>>;
  readonly expect: ErrorCode | readonly ErrorCode[];
  readonly options?: Omit<OpenImageOptions, 'openSibling' | 'signal'>;
}
