import { FerryError } from '../../../errors/index.js';
import type { FormatReader, FormatWriter } from '../../types.js';

// Placeholder until the ova reader lands: detection works, opening does not.
export const ovaReader: FormatReader = {
  name: 'ova',
  probe: (head, _tail, _size) =>
    head.length >= 512 &&
    head.toString('latin1', 257, 262) === 'ustar' &&
    /\.ovf$/i.test(head.toString('latin1', 0, 100).replace(/\0.*$/s, '')),
  open: async () => {
    throw new FerryError('FERRY_FORMAT_UNSUPPORTED', 'Cannot open ova image: not implemented yet');
  },
};

export const ovaWriter: FormatWriter = {
  name: 'ova',
  create: async () => {
    throw new FerryError('FERRY_FORMAT_UNSUPPORTED', 'Cannot write ova image: not implemented yet');
  },
};
