import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { throwIfAborted } from '../../file-source.js';
import { LIMITS } from '../../limits.js';
import { checkMemberName, printable } from './member-name.js';
import { MAX_PAX_BYTES, type PaxOverrides, parsePax } from './pax.js';
import { isZeroBlock, parseTarHeader, TAR_BLOCK, tarPadding } from './tar-header.js';

/** A regular-file member of the archive: its data is `size` bytes at `offset`. */
export interface TarMember {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

export interface TarListing {
  readonly members: readonly TarMember[];
  /** False when the archive ends without the two zero blocks. */
  readonly endMarker: boolean;
}

const KIND: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '5': 'a directory',
  '6': 'a FIFO',
  '7': 'a contiguous file',
  L: 'a GNU long-name record',
  K: 'a GNU long-link record',
};

function unsafe(name: string, reason: string): FerryError {
  return new FerryError(
    'FERRY_OVA_UNSAFE_MEMBER',
    `Cannot open OVA member "${printable(name)}": ${reason}`,
    { details: { name: printable(name) } },
  );
}

/**
 * Walks the headers of a ustar archive without extracting anything. Every
 * header's checksum is verified, sizes are bounded by the file, names are
 * checked, and only regular files (plus pax records, parsed with bounds) are
 * accepted: links, devices, directories and GNU extensions are refused.
 */
export async function walkTar(source: ByteSource, signal?: AbortSignal): Promise<TarListing> {
  const members: TarMember[] = [];
  const names = new Set<string>();
  let pos = 0;
  let pending: PaxOverrides | undefined;
  let headers = 0;
  while (true) {
    throwIfAborted(signal);
    if (pos === source.size) {
      if (pending !== undefined) {
        throw new FerryError(
          'FERRY_OVA_BAD_ARCHIVE',
          'Cannot read the OVA archive: it ends after a pax header',
        );
      }
      return { members, endMarker: false };
    }
    if (pos + TAR_BLOCK > source.size) {
      throw new FerryError(
        'FERRY_IMAGE_TRUNCATED',
        `Cannot read the OVA archive: it ends inside a header at ${pos}`,
        { details: { offset: pos, size: source.size } },
      );
    }
    if (++headers > 2 * LIMITS.maxOvaMembers + 2) {
      throw new FerryError(
        'FERRY_IMAGE_LIMIT',
        `Cannot read the OVA archive: it has more than ${LIMITS.maxOvaMembers} members`,
        { details: { cap: LIMITS.maxOvaMembers } },
      );
    }
    const block = await source.read(pos, TAR_BLOCK, signal);
    if (isZeroBlock(block)) {
      if (pending !== undefined) {
        throw new FerryError(
          'FERRY_OVA_BAD_ARCHIVE',
          'Cannot read the OVA archive: it ends after a pax header',
        );
      }
      return { members, endMarker: true };
    }
    const h = parseTarHeader(block, pos);
    const dataAt = pos + TAR_BLOCK;
    if (h.typeflag === 'x' || h.typeflag === 'g') {
      if (h.size > MAX_PAX_BYTES) {
        throw new FerryError(
          'FERRY_IMAGE_LIMIT',
          `Cannot read the OVA archive: a pax header of ${h.size} bytes exceeds ${MAX_PAX_BYTES}`,
          { details: { headerOffset: pos, size: h.size } },
        );
      }
      if (dataAt + h.size > source.size) {
        throw new FerryError(
          'FERRY_IMAGE_TRUNCATED',
          `Cannot read the OVA archive: a pax header at ${pos} runs past the end of the file`,
          { details: { headerOffset: pos, size: h.size } },
        );
      }
      const pax = parsePax(await source.read(dataAt, h.size, signal), pos);
      if (h.typeflag === 'g') {
        if (pax.path !== undefined || pax.size !== undefined) {
          throw new FerryError(
            'FERRY_OVA_BAD_ARCHIVE',
            'Cannot read the OVA archive: a global pax header sets a path or size',
            { details: { headerOffset: pos } },
          );
        }
      } else if (pending !== undefined) {
        throw new FerryError(
          'FERRY_OVA_BAD_ARCHIVE',
          'Cannot read the OVA archive: two pax headers in a row',
          { details: { headerOffset: pos } },
        );
      } else {
        pending = pax;
      }
      pos = dataAt + h.size + tarPadding(h.size);
      continue;
    }
    const rawName = pending?.path ?? h.name;
    const size = pending?.size ?? h.size;
    pending = undefined;
    if (h.typeflag !== '0' && h.typeflag !== '\0') {
      const kind = KIND[h.typeflag];
      throw unsafe(
        rawName,
        kind === undefined
          ? `its type "${printable(h.typeflag)}" is not a regular file`
          : `it is ${kind}, not a regular file`,
      );
    }
    const name = checkMemberName(rawName);
    if (members.length >= LIMITS.maxOvaMembers) {
      throw new FerryError(
        'FERRY_IMAGE_LIMIT',
        `Cannot read the OVA archive: it has more than ${LIMITS.maxOvaMembers} members`,
        { details: { cap: LIMITS.maxOvaMembers } },
      );
    }
    if (dataAt + size > source.size) {
      throw new FerryError(
        'FERRY_IMAGE_TRUNCATED',
        `Cannot read OVA member "${printable(name)}": its ${size} bytes run past the end of the archive (${source.size} bytes)`,
        { details: { name: printable(name), offset: dataAt, size, archiveSize: source.size } },
      );
    }
    if (names.has(name)) {
      throw new FerryError(
        'FERRY_OVA_BAD_ARCHIVE',
        `Cannot read the OVA archive: the member "${printable(name)}" appears twice`,
        { details: { name: printable(name) } },
      );
    }
    names.add(name);
    members.push({ name, offset: dataAt, size });
    pos = dataAt + size + tarPadding(size);
    if (pos > source.size) pos = source.size; // the last member's padding may be missing
  }
}
