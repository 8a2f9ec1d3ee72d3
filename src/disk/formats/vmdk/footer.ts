import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { MARKER_EOS, MARKER_FOOTER, SECTOR } from './constants.js';
import { decodeSparseHeader, hasSparseMagic, type SparseHeader } from './header.js';

function badFooter(name: string, reason: string, details?: Record<string, number>): FerryError {
  return new FerryError(
    'FERRY_VMDK_BAD_FOOTER',
    `Cannot open vmdk image ${name}: ${reason}`,
    details === undefined ? {} : { details },
  );
}

/** The header fields a footer must repeat unchanged. */
const SAME_FIELDS = [
  'version',
  'capacity',
  'grainSize',
  'descriptorOffset',
  'descriptorSize',
  'numGTEsPerGT',
  'compressAlgorithm',
] as const;

/**
 * Reads the footer of a stream-optimized extent whose header says GD_AT_END:
 * the last three sectors must be a footer marker, a copy of the header that
 * carries the real grain directory offset, and an end-of-stream marker.
 * Returns the footer's header, which takes precedence (as in qemu and VMware).
 */
export async function readFooter(
  source: ByteSource,
  header: SparseHeader,
  signal?: AbortSignal,
): Promise<SparseHeader> {
  const name = source.name;
  if (source.size < 4 * SECTOR) {
    throw badFooter(name, 'the file is too short to hold a footer', { size: source.size });
  }
  const buf = await source.read(source.size - 3 * SECTOR, 3 * SECTOR, signal);
  const fm = buf.subarray(0, SECTOR);
  if (fm.readUInt32LE(8) !== 0 || fm.readUInt32LE(12) !== MARKER_FOOTER) {
    throw badFooter(name, 'the footer marker is missing (1536 bytes before the end of file)');
  }
  const eos = buf.subarray(2 * SECTOR);
  if (
    eos.readBigUInt64LE(0) !== 0n ||
    eos.readUInt32LE(8) !== 0 ||
    eos.readUInt32LE(12) !== MARKER_EOS
  ) {
    throw badFooter(name, 'the end-of-stream marker is missing (last sector of the file)');
  }
  const raw = buf.subarray(SECTOR, 2 * SECTOR);
  if (!hasSparseMagic(raw)) throw badFooter(name, 'the footer does not start with KDMV');
  const footer = decodeSparseHeader(raw, name);
  if (footer.gdOffset === null) {
    throw badFooter(name, 'the footer does not give the grain directory offset either');
  }
  for (const f of SAME_FIELDS) {
    if (footer[f] !== header[f]) {
      throw badFooter(
        name,
        `the footer's ${f} (${footer[f]}) differs from the header's (${header[f]})`,
        {
          header: header[f],
          footer: footer[f],
        },
      );
    }
  }
  return footer;
}
