import { FerryError } from '../errors/index.js';
import type { ByteSource } from './byte-source.js';
import { PROBE_HEAD_BYTES } from './limits.js';
import { PROBED_READERS } from './registry.js';
import type { FormatName } from './types.js';

export interface Detection {
  /** The format the bytes say, or raw when none matched. */
  readonly format: FormatName;
  /** Every format whose magic matched (more than one is refused by openImage). */
  readonly matches: readonly FormatName[];
}

/**
 * Detects the format from magic bytes only, never from the file name: the
 * first 64 KiB and the last 512 bytes (a fixed VHD has only a trailing footer,
 * which qemu-img never probes; ferry does).
 */
export async function detectFormat(source: ByteSource, signal?: AbortSignal): Promise<Detection> {
  const head = await source.read(0, Math.min(source.size, PROBE_HEAD_BYTES), signal);
  const tailLen = Math.min(source.size, 512);
  const tail = await source.read(source.size - tailLen, tailLen, signal);
  const matches = PROBED_READERS.filter((r) => r.probe(head, tail, source.size)).map((r) => r.name);
  // A dynamic VHD carries its footer at both ends; that is one format, not two.
  return { format: matches[0] ?? 'raw', matches };
}

/** Throws when the bytes match several formats: a header hidden inside another image. */
export function assertUnambiguous(source: ByteSource, detection: Detection): void {
  if (detection.matches.length > 1) {
    throw new FerryError(
      'FERRY_FORMAT_MISMATCH',
      `Cannot open ${source.name}: its bytes match several formats (${detection.matches.join(', ')})`,
      { details: { matches: detection.matches.join(',') } },
    );
  }
}
