import { FerryError } from '../../../errors/index.js';
import type { FormatReader } from '../../types.js';

// Placeholder until the vdi reader lands: detection works, opening does not.
export const vdiReader: FormatReader = {
  name: 'vdi',
  probe: (head, _tail, _size) => head.length >= 0x48 && head.readUInt32LE(0x40) === 0xbeda107f,
  open: async () => {
    throw new FerryError('FERRY_FORMAT_UNSUPPORTED', 'Cannot open vdi image: not implemented yet');
  },
};
