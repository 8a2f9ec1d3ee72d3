import { FerryError } from '../../../errors/index.js';
import type { FormatReader, FormatWriter } from '../../types.js';

// Placeholder until the vmdk reader lands: detection works, opening does not.
export const vmdkReader: FormatReader = {
  name: 'vmdk',
  probe: (head, _tail, _size) =>
    (head.length >= 4 && head.toString('latin1', 0, 4) === 'KDMV') ||
    head.toString('latin1', 0, 21) === '# Disk DescriptorFile',
  open: async () => {
    throw new FerryError('FERRY_FORMAT_UNSUPPORTED', 'Cannot open vmdk image: not implemented yet');
  },
};

export const vmdkWriter: FormatWriter = {
  name: 'vmdk',
  create: async () => {
    throw new FerryError(
      'FERRY_FORMAT_UNSUPPORTED',
      'Cannot write vmdk image: not implemented yet',
    );
  },
};
