import { FerryError } from '../../../errors/index.js';

/** Largest pax extended header ferry reads (real ones are a few hundred bytes). */
export const MAX_PAX_BYTES = 64 * 1024;

/** The pax keywords ferry acts on; every other keyword (times, xattrs...) is ignored. */
export interface PaxOverrides {
  path?: string;
  size?: number;
}

function badPax(reason: string, where: number): FerryError {
  return new FerryError(
    'FERRY_OVA_BAD_ARCHIVE',
    `Cannot read the OVA archive: a pax header ${reason}`,
    { details: { headerOffset: where } },
  );
}

/**
 * Parses pax extended-header records ("<len> <key>=<value>\n"). Every record
 * must be well formed; `path` and `size` are returned, the rest is skipped.
 * The caller applies the same name checks to a pax path as to a ustar name.
 */
export function parsePax(data: Buffer, where: number): PaxOverrides {
  const out: PaxOverrides = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0 || space - pos > 10 || space === pos)
      throw badPax('has a bad record length', where);
    const lenText = data.toString('latin1', pos, space);
    if (!/^[0-9]+$/.test(lenText)) throw badPax('has a bad record length', where);
    const len = Number(lenText);
    const end = pos + len;
    if (len < space - pos + 3 || end > data.length || data[end - 1] !== 0x0a) {
      throw badPax('has a record that overruns its header', where);
    }
    const record = data.subarray(space + 1, end - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw badPax('has a record without a key', where);
    const key = record.toString('utf8', 0, eq);
    const valueBytes = record.subarray(eq + 1);
    const value = valueBytes.toString('utf8');
    if (key === 'path') {
      if (!Buffer.from(value, 'utf8').equals(valueBytes)) {
        throw badPax('has a path that is not valid UTF-8', where);
      }
      out.path = value;
    } else if (key === 'size') {
      if (!/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw badPax('has an invalid size', where);
      }
      out.size = Number(value);
    }
    pos = end;
  }
  return out;
}
