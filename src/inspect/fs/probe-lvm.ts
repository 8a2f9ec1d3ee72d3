import { crc32Raw } from '../../util/crc32.js';
import { type FsProbe, has, type ProbeSource, safeProduct } from './probe-util.js';

const LABEL_SIZE = 512;
/** LVM2 seeds its CRC-32 with this value and does not invert the result. */
export const LVM_CRC_SEED = 0xf597a6cf;
const ID_LEN = 32;

/** The label sector (0-3) holding "LABELONE" and "LVM2 001", with a valid CRC. */
function findLabel(head: Buffer): { sector: number; label: Buffer } | null {
  for (let sector = 0; sector < 4; sector++) {
    const label = head.subarray(sector * LABEL_SIZE, (sector + 1) * LABEL_SIZE);
    if (label.length < LABEL_SIZE || !has(label, 0, 'LABELONE') || !has(label, 24, 'LVM2 001'))
      continue;
    if (label.readBigUInt64LE(8) !== BigInt(sector)) continue;
    if (crc32Raw(label.subarray(20), LVM_CRC_SEED) !== label.readUInt32LE(16)) continue;
    return { sector, label };
  }
  return null;
}

/**
 * LVM2 physical volume: a label in one of the first four sectors, then the
 * PV header with the 32-character PV UUID (printed 6-4-4-4-4-4-6 as blkid
 * does) and the device size.
 */
export async function probeLvm(src: ProbeSource): Promise<FsProbe | null> {
  const found = findLabel(src.head);
  if (found === null) return null;
  const pvOffset = found.label.readUInt32LE(20);
  if (pvOffset < 32 || pvOffset + ID_LEN + 8 > LABEL_SIZE) return null;
  const id = found.label.toString('latin1', pvOffset, pvOffset + ID_LEN);
  const valid = /^[A-Za-z0-9!#+.=_-]{32}$/u.test(id);
  const groups = [6, 4, 4, 4, 4, 4, 6];
  let at = 0;
  const uuid = valid
    ? groups
        .map((n) => {
          const part = id.slice(at, at + n);
          at += n;
          return part;
        })
        .join('-')
    : null;
  const deviceSize = found.label.readBigUInt64LE(pvOffset + ID_LEN);
  return {
    type: 'lvm2',
    uuid,
    label: null,
    size: deviceSize === 0n ? null : safeProduct(deviceSize, 1),
    version: 'LVM2 001',
  };
}
