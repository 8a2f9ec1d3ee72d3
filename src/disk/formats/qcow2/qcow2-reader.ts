import type { ByteSource } from '../../byte-source.js';
import type { DiskImage, FormatReader, ImageWarning, OpenOptions } from '../../types.js';
import { QCOW2_MAGIC } from './constants.js';
import { readHeader } from './header.js';
import { Qcow2Image } from './qcow2-image.js';
import { decodeL1 } from './tables.js';

async function open(source: ByteSource, options: OpenOptions): Promise<DiskImage> {
  const header = await readHeader(source, options.signal);
  const l1Buf =
    header.l1Needed > 0
      ? await source.read(header.l1TableOffset, header.l1Needed * 8, options.signal)
      : Buffer.alloc(0);
  const l1 = decodeL1(l1Buf, { header, fileSize: source.size, name: source.name });
  const warnings: ImageWarning[] = [];
  if (header.dirty) {
    warnings.push({
      code: 'QCOW2_DIRTY',
      message:
        'The image was not closed cleanly (dirty bit set): its refcounts may be stale, its mapping is used as is',
    });
  }
  return new Qcow2Image(source, header, l1, warnings);
}

/** qcow2 versions 2 and 3, read-only, without backing or external data files. */
export const qcow2Reader: FormatReader = {
  name: 'qcow2',
  probe: (head) => head.length >= 4 && head.readUInt32BE(0) === QCOW2_MAGIC,
  open,
};
