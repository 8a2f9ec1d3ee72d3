import { FerryError } from '../../../errors/index.js';
import { u64le } from '../../binary.js';
import type { ByteSource } from '../../byte-source.js';
import { LIMITS } from '../../limits.js';
import {
  DESCRIPTION_BYTES,
  HEADER_SECTOR,
  HEADER_START,
  IMAGE_TYPE,
  MIN_HEADER_SIZE,
  OFF,
  SECTOR_SIZE,
  VDI_BLOCK_SIZE,
  VDI_MAX_BLOCKS,
  VDI_SIGNATURE,
  VDI_VERSION_1_1,
} from './constants.js';

/** The fields of a VDI 1.1 header that ferry uses, checked. */
export interface VdiHeader {
  readonly imageType: 'dynamic' | 'static';
  readonly offsetBmap: number;
  readonly offsetData: number;
  /** disk_size as stored. */
  readonly diskSize: number;
  /** The virtual size: disk_size rounded up to a sector, as qemu does. */
  readonly virtualSize: number;
  readonly blockSize: number;
  readonly blocksInImage: number;
  readonly blocksAllocated: number;
  readonly uuid: string;
  readonly description: string;
}

function bad(source: ByteSource, reason: string, details: Record<string, string | number> = {}) {
  return new FerryError('FERRY_VDI_BAD_HEADER', `Cannot open ${source.name}: ${reason}`, {
    details,
  });
}

/** Formats a VirtualBox UUID (little-endian GUID byte order) as text. */
export function formatUuid(buf: Buffer, at: number): string {
  const b = buf.subarray(at, at + 16);
  const hex = (from: number, to: number, reverse: boolean) => {
    const part = Buffer.from(b.subarray(from, to));
    return (reverse ? part.reverse() : part).toString('hex');
  };
  return [
    hex(0, 4, true),
    hex(4, 6, true),
    hex(6, 8, true),
    hex(8, 10, false),
    hex(10, 16, false),
  ].join('-');
}

function isNullUuid(buf: Buffer, at: number): boolean {
  for (let i = at; i < at + 16; i++) if (buf[i] !== 0) return false;
  return true;
}

/** The NUL-terminated description, with control characters replaced (it is untrusted text). */
function readDescription(buf: Buffer): string {
  const raw = buf.subarray(OFF.description, OFF.description + DESCRIPTION_BYTES);
  const nul = raw.indexOf(0);
  const text = raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** Reads and validates the header sector; refuses differencing and unusual layouts. */
export async function readVdiHeader(source: ByteSource, signal?: AbortSignal): Promise<VdiHeader> {
  const h = await source.read(0, HEADER_SECTOR, signal);
  const signature = h.readUInt32LE(OFF.signature);
  if (signature !== VDI_SIGNATURE) {
    throw bad(source, `the signature is 0x${signature.toString(16)}, not 0xbeda107f`, {
      signature,
    });
  }
  const version = h.readUInt32LE(OFF.version);
  if (version !== VDI_VERSION_1_1) {
    throw bad(source, `VDI version ${version >>> 16}.${version & 0xffff} is not 1.1`, { version });
  }
  const type = h.readUInt32LE(OFF.imageType);
  if (type === IMAGE_TYPE.diff || type === IMAGE_TYPE.undo) {
    throw new FerryError(
      'FERRY_VDI_DIFFERENCING',
      `Cannot open ${source.name}: it is ${type === IMAGE_TYPE.diff ? 'a differencing' : 'an undo'} image whose data depends on a parent`,
      {
        details: { imageType: type },
        hint: 'Convert the whole snapshot chain with VirtualBox first',
      },
    );
  }
  if (type !== IMAGE_TYPE.dynamic && type !== IMAGE_TYPE.static) {
    throw bad(source, `the image type ${type} is unknown`, { imageType: type });
  }
  if (!isNullUuid(h, OFF.uuidLink) || !isNullUuid(h, OFF.uuidParent)) {
    throw new FerryError(
      'FERRY_VDI_DIFFERENCING',
      `Cannot open ${source.name}: it names a parent image (link or parent UUID), so it is a differencing image`,
      {
        details: { link: formatUuid(h, OFF.uuidLink), parent: formatUuid(h, OFF.uuidParent) },
        hint: 'Convert the whole snapshot chain with VirtualBox first',
      },
    );
  }
  const headerSize = h.readUInt32LE(OFF.headerSize);
  const offsetBmap = h.readUInt32LE(OFF.offsetBmap);
  const offsetData = h.readUInt32LE(OFF.offsetData);
  if (headerSize < MIN_HEADER_SIZE || HEADER_START + headerSize > HEADER_SECTOR) {
    throw bad(source, `the header size ${headerSize} is invalid`, { headerSize });
  }
  const sectorSize = h.readUInt32LE(OFF.sectorSize);
  if (sectorSize !== SECTOR_SIZE) {
    throw bad(source, `the sector size ${sectorSize} is not 512`, { sectorSize });
  }
  const blockSize = h.readUInt32LE(OFF.blockSize);
  if (blockSize !== VDI_BLOCK_SIZE) {
    throw bad(source, `the block size ${blockSize} is not 1 MiB (the only size qemu reads)`, {
      blockSize,
    });
  }
  const blockExtra = h.readUInt32LE(OFF.blockExtra);
  if (blockExtra !== 0) {
    throw bad(source, `blocks carry ${blockExtra} bytes of extra data, which ferry does not read`, {
      blockExtra,
    });
  }
  if (offsetBmap % SECTOR_SIZE !== 0 || offsetData % SECTOR_SIZE !== 0) {
    throw bad(source, 'the block map or data offset is not sector-aligned', {
      offsetBmap,
      offsetData,
    });
  }
  if (offsetBmap < HEADER_SECTOR) {
    throw bad(source, `the block map at ${offsetBmap} overlaps the header`, { offsetBmap });
  }
  const diskSize = u64le(h, OFF.diskSize, 'VDI disk size');
  if (diskSize > LIMITS.maxVirtualSize) {
    throw new FerryError(
      'FERRY_IMAGE_TOO_LARGE',
      `Cannot open ${source.name}: its disk size ${diskSize} exceeds ${LIMITS.maxVirtualSize} bytes`,
      { details: { diskSize, max: LIMITS.maxVirtualSize } },
    );
  }
  const virtualSize = Math.ceil(diskSize / SECTOR_SIZE) * SECTOR_SIZE;
  const blocksInImage = h.readUInt32LE(OFF.blocksInImage);
  if (blocksInImage > VDI_MAX_BLOCKS) {
    throw bad(source, `blocks_in_image ${blocksInImage} exceeds ${VDI_MAX_BLOCKS}`, {
      blocksInImage,
    });
  }
  if (blocksInImage * 4 > LIMITS.maxBlockTableBytes) {
    throw new FerryError(
      'FERRY_IMAGE_LIMIT',
      `Cannot open ${source.name}: its block map needs ${blocksInImage * 4} bytes, more than the ${LIMITS.maxBlockTableBytes}-byte cap`,
      { details: { blocksInImage, cap: LIMITS.maxBlockTableBytes } },
    );
  }
  if (virtualSize > blocksInImage * blockSize) {
    throw bad(
      source,
      `the disk size ${diskSize} does not fit in ${blocksInImage} blocks of ${blockSize} bytes`,
      { diskSize, blocksInImage },
    );
  }
  const blocksAllocated = h.readUInt32LE(OFF.blocksAllocated);
  if (blocksAllocated > blocksInImage) {
    throw bad(
      source,
      `blocks_allocated ${blocksAllocated} exceeds blocks_in_image ${blocksInImage}`,
      {
        blocksAllocated,
        blocksInImage,
      },
    );
  }
  const mapEnd = offsetBmap + blocksInImage * 4;
  if (mapEnd > offsetData) {
    throw bad(source, `the block map (ending at ${mapEnd}) overlaps the data at ${offsetData}`, {
      offsetBmap,
      offsetData,
      blocksInImage,
    });
  }
  if (mapEnd > source.size || offsetData > source.size) {
    throw new FerryError(
      'FERRY_IMAGE_TRUNCATED',
      `Cannot open ${source.name}: the block map or data area lies past the end of the file (${source.size} bytes)`,
      { details: { offsetBmap, offsetData, size: source.size } },
    );
  }
  return {
    imageType: type === IMAGE_TYPE.static ? 'static' : 'dynamic',
    offsetBmap,
    offsetData,
    diskSize,
    virtualSize,
    blockSize,
    blocksInImage,
    blocksAllocated,
    uuid: formatUuid(h, OFF.uuidImage),
    description: readDescription(h),
  };
}
