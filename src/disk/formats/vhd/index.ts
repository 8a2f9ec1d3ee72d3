import { FerryError } from '../../../errors/index.js';
import type { FormatReader, FormatWriter } from '../../types.js';

// Placeholder until the vhd reader lands: detection works, opening does not.
export const vhdReader: FormatReader = {
  name: 'vhd',
  probe: (head, tail, size) =>
    head.toString('latin1', 0, 8) === 'conectix' ||
    (size >= 512 && tail.toString('latin1', tail.length - 512, tail.length - 504) === 'conectix'),
  open: async () => {
    throw new FerryError('FERRY_FORMAT_UNSUPPORTED', 'Cannot open vhd image: not implemented yet');
  },
};

export const vhdWriter: FormatWriter = {
  name: 'vhd',
  create: async () => {
    throw new FerryError('FERRY_FORMAT_UNSUPPORTED', 'Cannot write vhd image: not implemented yet');
  },
};
