import { FerryError } from '../../../errors/index.js';
import { decodeTarNumber, tarHeaderChecksums } from '../../../util/tar-fields.js';

/** ustar block size: headers and member data are laid out in 512-byte blocks. */
export const TAR_BLOCK = 512;

/** Offsets and lengths of the ustar header fields. */
export const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const;

/** A decoded header block. */
export interface TarHeader {
  /** prefix + "/" + name for POSIX ustar, else name; raw (not yet checked). */
  readonly name: string;
  readonly size: number;
  readonly typeflag: string;
}

function badArchive(where: number, reason: string): FerryError {
  return new FerryError('FERRY_OVA_BAD_ARCHIVE', `Cannot read the OVA archive: ${reason}`, {
    details: { headerOffset: where },
  });
}

/** True for an all-zero block (the end-of-archive marker). */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function field(block: Buffer, [at, len]: readonly [number, number]): Buffer {
  return block.subarray(at, at + len);
}

/** A NUL-terminated text field decoded as UTF-8; refuses bytes that are not valid UTF-8. */
function textField(block: Buffer, f: readonly [number, number], where: number): string {
  const raw = field(block, f);
  const nul = raw.indexOf(0);
  const bytes = raw.subarray(0, nul < 0 ? raw.length : nul);
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) {
    throw badArchive(where, 'a member name is not valid UTF-8');
  }
  return text;
}

/** A numeric field (octal or GNU base-256); negatives and values past 2^53 are refused. */
export function numericField(raw: Buffer, what: string, where: number): number {
  const v = decodeTarNumber(raw);
  if (typeof v === 'number') return v;
  if (v === 'past-2^53') {
    throw new FerryError(
      'FERRY_IMAGE_TOO_LARGE',
      `Cannot read the OVA archive: the ${what} field exceeds 2^53`,
      { details: { headerOffset: where } },
    );
  }
  throw badArchive(where, `the ${what} field ${PROBLEM[v]}`);
}

const PROBLEM = {
  negative: 'is negative',
  'not-octal': 'is not an octal number',
  'too-large': 'is too large',
} as const;

/** Decodes and checks one header block at archive offset `where` (checksum, magic, size). */
export function parseTarHeader(block: Buffer, where: number): TarHeader {
  const stored = numericField(field(block, F.chksum), 'checksum', where);
  const [unsigned, signed] = tarHeaderChecksums(block);
  if (stored !== unsigned && stored !== signed) {
    throw badArchive(where, `the header checksum is ${stored}, the header sums to ${unsigned}`);
  }
  const magic = field(block, F.magic).toString('latin1');
  const posix = magic === 'ustar\0';
  if (!posix && magic !== 'ustar ') {
    throw badArchive(where, 'the header is not a ustar header (an OVA must be a ustar archive)');
  }
  const name = textField(block, F.name, where);
  const prefix = posix ? textField(block, F.prefix, where) : '';
  return {
    name: prefix === '' ? name : `${prefix}/${name}`,
    size: numericField(field(block, F.size), 'size', where),
    typeflag: String.fromCharCode(block[F.typeflag[0]]!),
  };
}

function writeOctal(block: Buffer, [at, len]: readonly [number, number], value: number): void {
  const digits = value.toString(8).padStart(len - 1, '0');
  if (digits.length > len - 1) {
    throw new FerryError('FERRY_INTERNAL', `Cannot write a tar header: ${value} does not fit`);
  }
  block.write(`${digits}\0`, at, len, 'latin1');
}

/**
 * Encodes a POSIX ustar header for a regular file. Sizes past the 11-digit
 * octal limit (8 GiB) use GNU base-256, which GNU tar, bsdtar and Python read.
 */
export function encodeTarHeader(name: string, size: number, mtime: number): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > F.name[1]) {
    throw new FerryError('FERRY_INTERNAL', `Cannot write a tar header: "${name}" is too long`);
  }
  nameBytes.copy(block, F.name[0]);
  writeOctal(block, F.mode, 0o644);
  writeOctal(block, F.uid, 0);
  writeOctal(block, F.gid, 0);
  if (size < 8 ** 11) {
    writeOctal(block, F.size, size);
  } else {
    const [at, len] = F.size;
    let v = BigInt(size);
    for (let i = len - 1; i > 0; i--) {
      block[at + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    block[at] = 0x80;
  }
  writeOctal(block, F.mtime, Math.max(0, Math.floor(mtime)));
  block[F.typeflag[0]] = 0x30; // '0': regular file
  block.write('ustar\0', F.magic[0], 'latin1');
  block.write('00', F.version[0], 'latin1');
  block.write('root', F.uname[0], 'latin1');
  block.write('root', F.gname[0], 'latin1');
  writeOctal(block, F.devmajor, 0);
  writeOctal(block, F.devminor, 0);
  const [sum] = tarHeaderChecksums(block);
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, F.chksum[0], 8, 'latin1');
  return block;
}

/** Bytes of padding after `size` bytes of member data. */
export function tarPadding(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
}
