import { FerryError } from '../../../errors/index.js';
import { isPowerOfTwo, u64le } from '../../binary.js';
import type { ByteSource } from '../../byte-source.js';
import { LIMITS } from '../../limits.js';
import {
  FILE_PARAMETERS_GUID,
  guidText,
  LOGICAL_SECTOR_SIZE_GUID,
  MAX_BLOCK_SIZE,
  META_IS_REQUIRED,
  METADATA_ENTRY_SIZE,
  METADATA_SIGNATURE,
  METADATA_TABLE_SIZE,
  MIN_BLOCK_SIZE,
  PAGE83_GUID,
  PARAM_HAS_PARENT,
  PARAM_LEAVE_BLOCKS_ALLOCATED,
  PARENT_LOCATOR_GUID,
  PHYSICAL_SECTOR_SIZE_GUID,
  VIRTUAL_DISK_SIZE_GUID,
} from './constants.js';
import type { FileRegion } from './region-table.js';

/** The parsed metadata items ferry needs. */
export interface VhdxMetadata {
  readonly blockSize: number;
  readonly leaveBlocksAllocated: boolean;
  readonly virtualSize: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly page83: string;
}

function bad(source: ByteSource, reason: string, details: Record<string, string | number> = {}) {
  return new FerryError('FERRY_VHDX_BAD_METADATA', `Cannot open ${source.name}: ${reason}`, {
    details,
  });
}

/** Known items: GUID, name and the bytes ferry reads from it. */
const KNOWN = [
  { id: FILE_PARAMETERS_GUID, name: 'file parameters', size: 8, required: true },
  { id: VIRTUAL_DISK_SIZE_GUID, name: 'virtual disk size', size: 8, required: true },
  { id: PAGE83_GUID, name: 'page 83 data', size: 16, required: true },
  { id: LOGICAL_SECTOR_SIZE_GUID, name: 'logical sector size', size: 4, required: true },
  { id: PHYSICAL_SECTOR_SIZE_GUID, name: 'physical sector size', size: 4, required: true },
  { id: PARENT_LOCATOR_GUID, name: 'parent locator', size: 0, required: false },
] as const;

/**
 * Reads the metadata table at the start of the metadata region and the items
 * it points to. Every required item must be present once, lie inside the
 * region, and hold a valid value; unknown items marked required are refused.
 */
export async function readMetadata(
  source: ByteSource,
  region: FileRegion,
  signal?: AbortSignal,
): Promise<VhdxMetadata> {
  if (region.length < METADATA_TABLE_SIZE) {
    throw bad(
      source,
      `the metadata region (${region.length} bytes) is smaller than its 64 KiB table`,
    );
  }
  const table = await source.read(region.offset, METADATA_TABLE_SIZE, signal);
  if (table.toString('latin1', 0, 8) !== METADATA_SIGNATURE) {
    throw bad(source, 'the metadata table signature "metadata" is missing');
  }
  const count = table.readUInt16LE(10);
  if (count > LIMITS.maxVhdxTableEntries) {
    throw bad(
      source,
      `the metadata table lists ${count} entries, more than ${LIMITS.maxVhdxTableEntries}`,
      {
        entries: count,
      },
    );
  }
  const found = new Map<number, { offset: number; length: number }>();
  for (let i = 0; i < count; i++) {
    const at = 32 + i * METADATA_ENTRY_SIZE;
    const id = table.subarray(at, at + 16);
    const offset = table.readUInt32LE(at + 16);
    const length = table.readUInt32LE(at + 20);
    const flags = table.readUInt32LE(at + 24);
    const k = KNOWN.findIndex((item) => item.id.equals(id));
    if (k < 0) {
      if ((flags & META_IS_REQUIRED) !== 0) {
        throw new FerryError(
          'FERRY_FORMAT_UNSUPPORTED',
          `Cannot open ${source.name}: the VHDX requires metadata item ${guidText(id)}, which ferry does not know`,
          { details: { item: guidText(id) } },
        );
      }
      continue;
    }
    const item = KNOWN[k]!;
    if (found.has(k)) throw bad(source, `the metadata table lists the ${item.name} twice`);
    if (item.size > 0) {
      if (length < item.size || offset < METADATA_TABLE_SIZE || offset + length > region.length) {
        throw bad(
          source,
          `the ${item.name} item (${offset}+${length}) lies outside the metadata region or is too short`,
          {
            item: item.name,
            offset,
            length,
          },
        );
      }
    }
    found.set(k, { offset, length });
  }
  for (const [k, item] of KNOWN.entries()) {
    if (item.required && !found.has(k)) {
      throw bad(source, `the required metadata item "${item.name}" is missing`, {
        item: item.name,
      });
    }
  }
  const values = await Promise.all(
    KNOWN.map((item, k) => {
      const f = found.get(k);
      return f === undefined || item.size === 0
        ? Promise.resolve(Buffer.alloc(0))
        : source.read(region.offset + f.offset, item.size, signal);
    }),
  );
  const [params, size, page83, logical, physical] = values as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];

  const blockSize = params.readUInt32LE(0);
  const bits = params.readUInt32LE(4);
  if (!isPowerOfTwo(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    throw bad(source, `the block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`, {
      blockSize,
    });
  }
  if ((bits & PARAM_HAS_PARENT) !== 0) {
    throw new FerryError(
      'FERRY_VHDX_DIFFERENCING',
      `Cannot open ${source.name}: it is a differencing VHDX; ferry never opens its parent`,
      { hint: 'Merge it into its parent first (e.g. Merge-VHD on Hyper-V)' },
    );
  }
  const logicalSectorSize = logical.readUInt32LE(0);
  const physicalSectorSize = physical.readUInt32LE(0);
  for (const [what, v] of [
    ['logical', logicalSectorSize],
    ['physical', physicalSectorSize],
  ] as const) {
    if (v !== 512 && v !== 4096) {
      throw bad(source, `the ${what} sector size ${v} is neither 512 nor 4096`, { [what]: v });
    }
  }
  const virtualSize = u64le(size, 0, 'VHDX virtual disk size');
  if (virtualSize > LIMITS.maxVirtualSize) {
    throw new FerryError(
      'FERRY_IMAGE_TOO_LARGE',
      `Cannot open ${source.name}: the virtual disk size ${virtualSize} exceeds 64 TiB`,
      { details: { virtualSize } },
    );
  }
  if (virtualSize % logicalSectorSize !== 0) {
    throw bad(
      source,
      `the virtual disk size ${virtualSize} is not a multiple of the ${logicalSectorSize}-byte sector`,
      {
        virtualSize,
      },
    );
  }
  return {
    blockSize,
    leaveBlocksAllocated: (bits & PARAM_LEAVE_BLOCKS_ALLOCATED) !== 0,
    virtualSize,
    logicalSectorSize,
    physicalSectorSize,
    page83: guidText(page83),
  };
}
