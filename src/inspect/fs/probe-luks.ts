import { cString, type FsProbe, has, type ProbeSource } from './probe-util.js';

const LUKS_MAGIC = Buffer.from('LUKS\xba\xbe', 'latin1');

/**
 * LUKS1/LUKS2: "LUKS\xBA\xBE" and a big-endian version at 6. Both keep the
 * UUID as 40 bytes of text at 168; LUKS2 has a label at 24. The encrypted
 * payload's size is not in the binary header: size is null.
 */
export async function probeLuks(src: ProbeSource): Promise<FsProbe | null> {
  const h = src.head;
  if (h.length < 512 || !has(h, 0, LUKS_MAGIC)) return null;
  const version = h.readUInt16BE(6);
  if (version !== 1 && version !== 2) return null;
  return {
    type: 'luks',
    uuid: cString(h, 168, 40, 'latin1'),
    label: version === 2 ? cString(h, 24, 48) : null,
    size: null,
    version: String(version),
  };
}
