import { FerryError } from '../../../errors/index.js';
import type { FormatReader, FormatWriter } from '../../types.js';

// Placeholder until the qcow2 reader lands: detection works, opening does not.
export const qcow2Reader: FormatReader = {
  name: 'qcow2',
  probe: (head, _tail, _size) => head.length >= 8 && head.readUInt32BE(0) === 0x514649fb,
  open: async () => {
    throw new FerryError(
      'FERRY_FORMAT_UNSUPPORTED',
      'Cannot open qcow2 image: not implemented yet',
    );
  },
};

export const qcow2Writer: FormatWriter = {
  name: 'qcow2',
  create: async () => {
    throw new FerryError(
      'FERRY_FORMAT_UNSUPPORTED',
      'Cannot write qcow2 image: not implemented yet',
    );
  },
};
