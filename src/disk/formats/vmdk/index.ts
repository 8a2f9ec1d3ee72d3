import { FerryError } from '../../../errors/index.js';
import type { FormatReader } from '../../types.js';

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

export { VmdkStreamWriter } from './stream-writer.js';
export { vmdkWriter } from './vmdk-writer.js';
