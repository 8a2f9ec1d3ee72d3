import { randomBytes } from 'node:crypto';
import {
  BAT_REGION_GUID,
  guid,
  METADATA_REGION_GUID,
  MiB,
  PAYLOAD_FULLY_PRESENT,
  PAYLOAD_ZERO,
} from '../../src/disk/formats/vhdx/constants.js';
import {
  checksumOf,
  encodeFileIdentifier,
  encodeHeader,
  encodeMetadata,
  encodeRegionTable,
  sealChecksum,
} from '../../src/disk/formats/vhdx/structures.js';
import type { MalformedCase } from './types.js';

/** Where the pieces of a built VHDX lie, for tests that patch them. */
export interface VhdxLayout {
  readonly logOffset: number;
  readonly logLength: number;
  readonly batOffset: number;
  readonly metadataOffset: number;
  readonly blockSize: number;
  readonly chunkRatio: number;
  readonly payloadBlocks: number;
  /** File offset of each data block. */
  readonly dataOffsets: ReadonlyMap<number, number>;
}

export interface VhdxSpec {
  /** Virtual disk size (default 8 MiB). */
  readonly virtualSize?: number;
  /** Payload block size (default 1 MiB). */
  readonly blockSize?: number;
  readonly logicalSectorSize?: 512 | 4096;
  /** Blocks stored FULLY_PRESENT with the pattern of `blockPattern`. */
  readonly data?: readonly number[];
  /** Blocks in the ZERO state. */
  readonly zero?: readonly number[];
  /** A 1 MiB log region at 1 MiB (else no log). */
  readonly log?: boolean;
}

/** The bytes of data block `block` as the builder stores them (clipped to `length`). */
export function blockPattern(block: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  for (let s = 0; s < length; s += 512) {
    buf.fill((block * 31 + s / 512) & 0xff, s, Math.min(s + 512, length));
    if (s + 8 <= length) buf.writeUInt32LE(block * 0x10000 + s / 512, s);
  }
  return buf;
}

/**
 * Builds a small, valid VHDX in memory: header section, optional 1 MiB log,
 * 1 MiB BAT, 1 MiB metadata region, then the data blocks in the order given.
 */
export function buildVhdx(spec: VhdxSpec = {}): { image: Buffer; layout: VhdxLayout } {
  const virtualSize = spec.virtualSize ?? 8 * MiB;
  const blockSize = spec.blockSize ?? MiB;
  const lss = spec.logicalSectorSize ?? 512;
  const ratio = (2 ** 23 * lss) / blockSize;
  const payloadBlocks = Math.ceil(virtualSize / blockSize);
  const logLength = spec.log === true ? MiB : 0;
  const logOffset = MiB;
  const batOffset = MiB + logLength;
  const metadataOffset = batOffset + MiB;
  const data = spec.data ?? [];
  const dataOffsets = new Map<number, number>();
  for (const [i, b] of data.entries()) dataOffsets.set(b, metadataOffset + MiB + i * blockSize);
  const image = Buffer.alloc(metadataOffset + MiB + data.length * blockSize);

  encodeFileIdentifier('ferry test corpus').copy(image, 0);
  const header = {
    fileWriteGuid: randomBytes(16),
    dataWriteGuid: randomBytes(16),
    logGuid: Buffer.alloc(16),
    logVersion: 0,
    version: 1,
    logLength,
    logOffset,
  };
  encodeHeader({ ...header, sequence: 10n }).copy(image, 64 * 1024);
  encodeHeader({ ...header, sequence: 11n }).copy(image, 128 * 1024);
  const table = encodeRegionTable([
    { guid: BAT_REGION_GUID, offset: batOffset, length: MiB, required: true },
    { guid: METADATA_REGION_GUID, offset: metadataOffset, length: MiB, required: true },
  ]);
  table.copy(image, 192 * 1024);
  table.copy(image, 256 * 1024);
  encodeMetadata({
    blockSize,
    leaveBlocksAllocated: false,
    hasParent: false,
    virtualSize,
    logicalSectorSize: lss,
    physicalSectorSize: 4096,
    page83: randomBytes(16),
  }).copy(image, metadataOffset);
  const entry = (b: number) => batOffset + (b + Math.floor(b / ratio)) * 8;
  for (const b of spec.zero ?? []) image.writeUInt32LE(PAYLOAD_ZERO, entry(b));
  for (const [b, off] of dataOffsets) {
    image.writeUInt32LE(((off / MiB) << 20) | PAYLOAD_FULLY_PRESENT, entry(b));
    blockPattern(b, blockSize).copy(image, off);
  }
  return {
    image,
    layout: {
      logOffset,
      logLength,
      batOffset,
      metadataOffset,
      blockSize,
      chunkRatio: ratio,
      payloadBlocks,
      dataOffsets,
    },
  };
}

/** Offset in the file of the BAT entry of payload block `block`. */
export function batEntryOffset(layout: VhdxLayout, block: number): number {
  return layout.batOffset + (block + Math.floor(block / layout.chunkRatio)) * 8;
}

/** Recomputes the CRC-32C of both headers and both region tables (where they fit). */
export function resealVhdx(image: Buffer): void {
  for (const [at, size] of [
    [64 * 1024, 4096],
    [128 * 1024, 4096],
    [192 * 1024, 65536],
    [256 * 1024, 65536],
  ] as const) {
    if (image.length >= at + size) sealChecksum(image.subarray(at, at + size));
  }
}

/** Builds an image, lets `patch` damage it, then reseals the checksums unless told not to. */
function patched(
  patch: (image: Buffer, layout: VhdxLayout) => unknown,
  spec: VhdxSpec = { data: [0, 3], zero: [5] },
  reseal = true,
): Buffer {
  const { image, layout } = buildVhdx(spec);
  const result = patch(image, layout);
  const out = Buffer.isBuffer(result) ? result : image;
  if (reseal) resealVhdx(out);
  return out;
}

/** A case whose bytes are built when read, so the corpus costs no memory until used. */
function lazyCase(
  name: string,
  expect: MalformedCase['expect'],
  build: () => Buffer,
  options?: MalformedCase['options'],
): MalformedCase {
  return {
    name,
    expect,
    get files() {
      return { 'disk.vhdx': build() };
    },
    ...(options === undefined ? {} : { options }),
  };
}

const H1 = 64 * 1024;
const H2 = 128 * 1024;
const RT1 = 192 * 1024;
const RT2 = 256 * 1024;
/** Region table entry i of both copies: calls fn(offsetOfEntry) for each copy. */
const eachRegionEntry = (i: number, fn: (at: number) => void) => {
  for (const rt of [RT1, RT2]) fn(rt + 16 + i * 32);
};
/** Metadata table entry i. */
const metaEntry = (l: VhdxLayout, i: number) => l.metadataOffset + 32 + i * 32;

/** A valid log entry (CRC included) carrying `logGuid`, 4 KiB long. */
export function logEntry(logGuid: Buffer): Buffer {
  const e = Buffer.alloc(4096);
  e.write('loge', 0, 'latin1');
  e.writeUInt32LE(4096, 8); // entry length
  e.writeUInt32LE(0, 12); // tail
  e.writeBigUInt64LE(1n, 16); // sequence
  e.writeUInt32LE(0, 24); // descriptor count
  logGuid.copy(e, 32);
  e.writeBigUInt64LE(BigInt(8 * MiB), 48); // flushed file offset
  e.writeBigUInt64LE(BigInt(8 * MiB), 56); // last file offset
  e.writeUInt32LE(checksumOf(e), 4);
  return e;
}

/** Sets the log GUID of both headers. */
function setLogGuid(image: Buffer, id: Buffer): void {
  id.copy(image, H1 + 48);
  id.copy(image, H2 + 48);
}

const LIVE_LOG_GUID = guid('0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0');

/** Malformed vhdx images; see test/corpus/types.ts. */
export const vhdxCases: MalformedCase[] = [
  lazyCase(
    'bad file identifier (detected as raw, declared vhdx)',
    'FERRY_FORMAT_MISMATCH',
    () => patched((img) => void img.write('vhdxfilX', 0, 'latin1')),
    { format: 'vhdx' },
  ),
  lazyCase('both headers fail CRC-32C', 'FERRY_VHDX_BAD_HEADER', () =>
    patched(
      (img) => {
        img[H1 + 100] = 1;
        img[H2 + 100] = 1;
      },
      undefined,
      false,
    ),
  ),
  lazyCase('both headers have version 2', 'FERRY_VHDX_BAD_HEADER', () =>
    patched((img) => {
      img.writeUInt16LE(2, H1 + 66);
      img.writeUInt16LE(2, H2 + 66);
    }),
  ),
  lazyCase('headers share a sequence number but differ', 'FERRY_VHDX_BAD_HEADER', () =>
    patched((img) => {
      img.writeBigUInt64LE(7n, H1 + 8);
      img.writeBigUInt64LE(7n, H2 + 8);
      img.writeUInt8(img.readUInt8(H2 + 20) ^ 0xff, H2 + 20);
    }),
  ),
  lazyCase('log is not empty (valid entry with the header log GUID)', 'FERRY_VHDX_LOG_REPLAY', () =>
    patched(
      (img, l) => {
        setLogGuid(img, LIVE_LOG_GUID);
        logEntry(LIVE_LOG_GUID).copy(img, l.logOffset + 8192);
      },
      { data: [0], log: true },
    ),
  ),
  lazyCase('log version is not 0', 'FERRY_VHDX_BAD_HEADER', () =>
    patched((img) => {
      img.writeUInt16LE(1, H1 + 64);
      img.writeUInt16LE(1, H2 + 64);
    }),
  ),
  lazyCase('log region extends past the end of the file', 'FERRY_IMAGE_TRUNCATED', () =>
    patched((img) => {
      img.writeUInt32LE(512 * MiB, H1 + 68);
      img.writeUInt32LE(512 * MiB, H2 + 68);
    }),
  ),
  lazyCase('log region overlaps the BAT', 'FERRY_VHDX_BAD_HEADER', () =>
    patched((img) => {
      img.writeUInt32LE(2 * MiB, H1 + 68);
      img.writeUInt32LE(2 * MiB, H2 + 68);
    }),
  ),
  lazyCase('both region tables fail CRC-32C', 'FERRY_VHDX_BAD_HEADER', () =>
    patched(
      (img) => {
        img[RT1 + 1000] = 1;
        img[RT2 + 1000] = 1;
      },
      undefined,
      false,
    ),
  ),
  lazyCase('region table lists 2048 entries', 'FERRY_VHDX_BAD_HEADER', () =>
    patched((img) => {
      img.writeUInt32LE(2048, RT1 + 8);
      img.writeUInt32LE(2048, RT2 + 8);
    }),
  ),
  lazyCase('region table lists 0xffffffff entries', 'FERRY_VHDX_BAD_HEADER', () =>
    patched((img) => {
      img.writeUInt32LE(0xffffffff, RT1 + 8);
      img.writeUInt32LE(0xffffffff, RT2 + 8);
    }),
  ),
  lazyCase('BAT region extends past the end of the file', 'FERRY_IMAGE_TRUNCATED', () =>
    patched((img) =>
      eachRegionEntry(0, (at) => img.writeBigUInt64LE(4096n * BigInt(MiB), at + 16)),
    ),
  ),
  lazyCase('BAT region offset is 2^63', ['FERRY_IMAGE_TRUNCATED', 'FERRY_VHDX_BAD_HEADER'], () =>
    patched((img) => eachRegionEntry(0, (at) => img.writeBigUInt64LE(2n ** 63n, at + 16))),
  ),
  lazyCase('metadata region overlaps the BAT region', 'FERRY_VHDX_BAD_HEADER', () =>
    patched((img, l) =>
      eachRegionEntry(1, (at) => img.writeBigUInt64LE(BigInt(l.batOffset), at + 16)),
    ),
  ),
  lazyCase('region offset is not 1 MiB aligned', 'FERRY_VHDX_BAD_HEADER', () =>
    patched((img, l) =>
      eachRegionEntry(1, (at) => img.writeBigUInt64LE(BigInt(l.metadataOffset + 4096), at + 16)),
    ),
  ),
  lazyCase('region table lists the BAT twice and no metadata', 'FERRY_VHDX_BAD_HEADER', () =>
    patched((img) => eachRegionEntry(1, (at) => BAT_REGION_GUID.copy(img, at))),
  ),
  lazyCase('unknown region marked required', 'FERRY_FORMAT_UNSUPPORTED', () =>
    patched((img) => {
      for (const rt of [RT1, RT2]) {
        img.writeUInt32LE(3, rt + 8);
        const at = rt + 16 + 2 * 32;
        guid('11111111-2222-3333-4444-555555555555').copy(img, at);
        img.writeBigUInt64LE(BigInt(MiB * 1), at + 16);
        img.writeUInt32LE(MiB, at + 24);
        img.writeUInt32LE(1, at + 28);
      }
    }),
  ),
  lazyCase('metadata signature missing', 'FERRY_VHDX_BAD_METADATA', () =>
    patched((img, l) => void img.write('metadatX', l.metadataOffset, 'latin1')),
  ),
  lazyCase('metadata table lists 2048 entries', 'FERRY_VHDX_BAD_METADATA', () =>
    patched((img, l) => void img.writeUInt16LE(2048, l.metadataOffset + 10)),
  ),
  lazyCase('metadata lacks the logical sector size item', 'FERRY_VHDX_BAD_METADATA', () =>
    // Entry 3 is the logical sector size: drop it by moving entry 4 over it.
    patched((img, l) => {
      img.copy(img, metaEntry(l, 3), metaEntry(l, 4), metaEntry(l, 5));
      img.fill(0, metaEntry(l, 4), metaEntry(l, 5));
      img.writeUInt16LE(4, l.metadataOffset + 10);
    }),
  ),
  lazyCase('metadata lists the virtual disk size twice', 'FERRY_VHDX_BAD_METADATA', () =>
    patched((img, l) => void img.copy(img, metaEntry(l, 2), metaEntry(l, 1), metaEntry(l, 2))),
  ),
  lazyCase('metadata item lies outside the metadata region', 'FERRY_VHDX_BAD_METADATA', () =>
    patched((img, l) => void img.writeUInt32LE(MiB - 4, metaEntry(l, 1) + 16)),
  ),
  lazyCase('unknown metadata item marked required', 'FERRY_FORMAT_UNSUPPORTED', () =>
    patched((img, l) => {
      guid('99999999-2222-3333-4444-555555555555').copy(img, metaEntry(l, 5));
      img.writeUInt32LE(0x4, metaEntry(l, 5) + 24);
      img.writeUInt16LE(6, l.metadataOffset + 10);
    }),
  ),
  lazyCase('block size is not a power of two', 'FERRY_VHDX_BAD_METADATA', () =>
    patched((img, l) => void img.writeUInt32LE(3 * MiB, l.metadataOffset + 64 * 1024)),
  ),
  lazyCase('block size is 512 MiB', 'FERRY_VHDX_BAD_METADATA', () =>
    patched((img, l) => void img.writeUInt32LE(512 * MiB, l.metadataOffset + 64 * 1024)),
  ),
  lazyCase('block size is 0', 'FERRY_VHDX_BAD_METADATA', () =>
    patched((img, l) => void img.writeUInt32LE(0, l.metadataOffset + 64 * 1024)),
  ),
  lazyCase('HasParent set (differencing disk)', 'FERRY_VHDX_DIFFERENCING', () =>
    patched((img, l) => void img.writeUInt32LE(2, l.metadataOffset + 64 * 1024 + 4)),
  ),
  lazyCase('logical sector size 1000', 'FERRY_VHDX_BAD_METADATA', () =>
    // Items: params 8, size 8, page83 16, logical sector size at +32.
    patched((img, l) => void img.writeUInt32LE(1000, l.metadataOffset + 64 * 1024 + 32)),
  ),
  lazyCase('virtual size is 2^64-1', 'FERRY_IMAGE_TOO_LARGE', () =>
    patched(
      (img, l) =>
        void img.fill(0xff, l.metadataOffset + 64 * 1024 + 8, l.metadataOffset + 64 * 1024 + 16),
    ),
  ),
  lazyCase('virtual size is 65 TiB', 'FERRY_IMAGE_TOO_LARGE', () =>
    patched(
      (img, l) => void img.writeBigUInt64LE(65n * 2n ** 40n, l.metadataOffset + 64 * 1024 + 8),
    ),
  ),
  lazyCase('virtual size is not a sector multiple', 'FERRY_VHDX_BAD_METADATA', () =>
    patched(
      (img, l) => void img.writeBigUInt64LE(BigInt(8 * MiB + 1), l.metadataOffset + 64 * 1024 + 8),
    ),
  ),
  lazyCase('BAT needs more entries than the BAT region holds', 'FERRY_VHDX_BAD_BAT', () =>
    // 2 TiB with 1 MiB blocks: 2 Mi entries (16 MiB) in a 1 MiB region.
    patched((img, l) => void img.writeBigUInt64LE(2n ** 41n, l.metadataOffset + 64 * 1024 + 8)),
  ),
  lazyCase('BAT larger than the 64 MiB cap', 'FERRY_IMAGE_LIMIT', () =>
    // 64 TiB with 1 MiB blocks: 64 Mi entries (512 MiB).
    patched((img, l) => void img.writeBigUInt64LE(2n ** 46n, l.metadataOffset + 64 * 1024 + 8)),
  ),
  lazyCase('BAT entry points past the end of the file', 'FERRY_VHDX_BAD_BAT', () =>
    patched((img, l) => void img.writeUInt32LE(((100 << 20) | 6) >>> 0, batEntryOffset(l, 1))),
  ),
  lazyCase('BAT entry file offset field is all ones', 'FERRY_VHDX_BAD_BAT', () =>
    patched((img, l) => {
      img.writeUInt32LE(0xfff00006, batEntryOffset(l, 1));
      img.writeUInt32LE(0xffffffff, batEntryOffset(l, 1) + 4);
    }),
  ),
  lazyCase('BAT entry points into the header section', 'FERRY_VHDX_BAD_BAT', () =>
    patched((img, l) => void img.writeUInt32LE(6, batEntryOffset(l, 1))),
  ),
  lazyCase('BAT entry points into the metadata region', 'FERRY_VHDX_BAD_BAT', () =>
    patched(
      (img, l) =>
        void img.writeUInt32LE(((l.metadataOffset / MiB) << 20) | 6, batEntryOffset(l, 1)),
    ),
  ),
  lazyCase('two BAT entries share one block', 'FERRY_VHDX_BAD_BAT', () =>
    patched(
      (img, l) =>
        void img.copy(img, batEntryOffset(l, 6), batEntryOffset(l, 0), batEntryOffset(l, 0) + 8),
    ),
  ),
  lazyCase('BAT entry has the invalid state 4', 'FERRY_VHDX_BAD_BAT', () =>
    patched((img, l) => void img.writeUInt32LE(4, batEntryOffset(l, 2))),
  ),
  lazyCase('BAT entry is PARTIALLY_PRESENT', 'FERRY_VHDX_BAD_BAT', () =>
    patched(
      (img, l) =>
        void img.writeUInt32LE(((l.dataOffsets.get(0)! / MiB) << 20) | 7, batEntryOffset(l, 0)),
    ),
  ),
  lazyCase('file truncated inside the last data block', 'FERRY_VHDX_BAD_BAT', () =>
    patched((img) => img.subarray(0, img.length - 4096)),
  ),
  lazyCase('file truncated inside the header section', 'FERRY_IMAGE_TRUNCATED', () =>
    patched((img) => img.subarray(0, 100 * 1024), undefined, false),
  ),
  lazyCase('file truncated before the metadata region', 'FERRY_IMAGE_TRUNCATED', () =>
    patched((img, l) => img.subarray(0, l.metadataOffset + 4096)),
  ),
];
