import { tarHeaderChecksums } from '../../../util/tar-fields.js';
import { numericField, TAR_BLOCK } from './tar-header.js';

/**
 * An OVA is a ustar archive: the first block is a ustar header with a valid
 * checksum. Any such archive is claimed, so a tar whose first member is not
 * the .ovf is refused as an OVA rather than read as a raw disk.
 */
export function probeOva(head: Buffer): boolean {
  if (head.length < TAR_BLOCK || head.toString('latin1', 257, 262) !== 'ustar') return false;
  try {
    const stored = numericField(head.subarray(148, 156), 'checksum', 0);
    const [unsigned, signed] = tarHeaderChecksums(head);
    return stored === unsigned || stored === signed;
  } catch {
    return false;
  }
}
