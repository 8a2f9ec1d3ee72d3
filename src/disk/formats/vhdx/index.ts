import { FerryError } from '../../../errors/index.js';
import type { FormatReader, FormatWriter } from '../../types.js';

// Placeholder until the vhdx reader lands: detection works, opening does not.
export const vhdxReader: FormatReader = {
  name: 'vhdx',
  probe: (head, _tail, _size) => head.toString('latin1', 0, 8) === 'vhdxfile',
  open: async () => {
    throw new FerryError('FERRY_FORMAT_UNSUPPORTED', 'Cannot open vhdx image: not implemented yet');
  },
};

export const vhdxWriter: FormatWriter = {
  name: 'vhdx',
  create: async () => {
    throw new FerryError(
      'FERRY_FORMAT_UNSUPPORTED',
      'Cannot write vhdx image: not implemented yet',
    );
  },
};
