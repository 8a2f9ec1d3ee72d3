import { createRequire } from 'node:module';
import { FerryError } from '../errors/index.js';
import type { ByteRange } from './byte-source.js';

/** The optional N-API binding built from native/ferry_native.c by `npm ci`. */
interface NativeBinding {
  /** Data ranges as [start, end) pairs, at most `maxRanges` per call; null when unknown. */
  dataRanges(
    fd: number,
    offset: number,
    length: number,
    limit?: number,
  ): Array<[number, number]> | null;
  readonly maxRanges: number;
  /** Extended attributes of a path (not following a symlink); null when the filesystem has none. */
  listXattrs?(path: string): Array<[string, Buffer]> | null;
  setXattr?(path: string, name: string, value: Buffer): void;
  /** syncfs(2): flushes the filesystem holding `fd` (blocking; call it rarely). */
  syncfs?(fd: number): void;
  /** sync_file_range WRITE over the whole file, off the main thread; false when unsupported. */
  startWriteback?(fd: number): Promise<boolean>;
  /** posix_fadvise WILLNEED: the kernel starts reading the range ahead (advisory). */
  willNeed?(fd: number, offset: number, length: number): void;
}

/** node-gyp's output, seen from dist/src/disk/ (compiled) and from src/disk/ (run from source). */
const BINDING_PATHS = [
  '../../../build/Release/ferry_native.node',
  '../../build/Release/ferry_native.node',
];

let binding: NativeBinding | null | undefined;

/** Loads the binding once; null when it is not built or the platform is not Linux. */
export function nativeBinding(): NativeBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  if (process.platform !== 'linux') return binding;
  const require = createRequire(import.meta.url);
  for (const path of BINDING_PATHS) {
    try {
      const loaded = require(path) as Partial<NativeBinding>;
      if (typeof loaded.dataRanges === 'function' && typeof loaded.maxRanges === 'number') {
        binding = loaded as NativeBinding;
        break;
      }
    } catch {
      // Not built (no compiler at install time): everything reads as data.
    }
  }
  return binding;
}

/**
 * Data ranges of an open file within [offset, offset+length), from
 * SEEK_DATA/SEEK_HOLE, in increasing order and clamped to the range. Ranges
 * are filesystem-block granular. Returns undefined when the platform cannot
 * tell (the caller then treats the range as data). The answer is complete:
 * the binding caps each call, and this keeps asking from where it stopped, so
 * callers bound memory by the window they ask about (one range per 2 fs blocks
 * at worst). `perCall` lowers the binding's cap (tests use it to exercise the loop).
 */
export function seekDataRanges(
  fd: number,
  offset: number,
  length: number,
  perCall?: number,
): ByteRange[] | undefined {
  const native = nativeBinding();
  if (native === null) return undefined;
  if (length <= 0) return [];
  const limit = Math.max(1, Math.min(perCall ?? native.maxRanges, native.maxRanges));
  const end = offset + length;
  const out: ByteRange[] = [];
  let pos = offset;
  while (pos < end) {
    let pairs: Array<[number, number]> | null;
    try {
      pairs = native.dataRanges(fd, pos, end - pos, limit);
    } catch (error) {
      const errno = (error as { code?: string } | undefined)?.code ?? 'EUNKNOWN';
      throw new FerryError('FERRY_IO', `Cannot map the data ranges of fd ${fd}: ${errno}`, {
        details: { fd, offset: pos, errno },
        cause: error,
      });
    }
    if (pairs === null) return undefined;
    for (const [start, stop] of pairs) {
      const last = out[out.length - 1];
      if (last !== undefined && last.offset + last.length === start) {
        out[out.length - 1] = { offset: last.offset, length: stop - last.offset };
      } else {
        out.push({ offset: start, length: stop - start });
      }
    }
    const tail = pairs[pairs.length - 1];
    if (pairs.length < limit || tail === undefined) break;
    pos = tail[1];
  }
  return out;
}
