import type { MalformedCase } from './types.js';

const MiB = 1024 * 1024;

export interface VdiSpec {
  /** disk_size (default 4 MiB). */
  readonly diskSize?: number;
  /** blocks_in_image (default: enough for diskSize). */
  readonly blocksInImage?: number;
  /** Virtual blocks stored, in data order: block i of this list is data block i. */
  readonly data?: readonly number[];
  /** Virtual blocks marked discarded (0xFFFFFFFE). */
  readonly discarded?: readonly number[];
  /** image_type: 1 dynamic (default), 2 static. */
  readonly imageType?: number;
}

/** Byte offsets of the fields the corpus patches. */
export const VDI_OFF = {
  signature: 0x40,
  version: 0x44,
  headerSize: 0x48,
  imageType: 0x4c,
  offsetBmap: 0x154,
  offsetData: 0x158,
  sectorSize: 0x168,
  diskSize: 0x170,
  blockSize: 0x178,
  blockExtra: 0x17c,
  blocksInImage: 0x180,
  blocksAllocated: 0x184,
  uuidImage: 0x188,
  uuidLink: 0x1a8,
  uuidParent: 0x1b8,
} as const;

/** The bytes data block `block` holds as the builder stores it. */
export function vdiBlockPattern(block: number): Buffer {
  const buf = Buffer.alloc(MiB);
  for (let s = 0; s < MiB; s += 512) {
    buf.fill((block * 7 + s / 512) & 0xff, s, s + 512);
    buf.writeUInt32LE(block * 0x10000 + s / 512, s);
  }
  return buf;
}

/**
 * Builds a small valid VDI 1.1 in memory, laid out as qemu does: header
 * sector, block map at 0x200 (sector-padded), then the data blocks.
 */
export function buildVdi(spec: VdiSpec = {}): Buffer {
  const diskSize = spec.diskSize ?? 4 * MiB;
  const blocks = spec.blocksInImage ?? Math.ceil(diskSize / MiB);
  const data = spec.data ?? [];
  const mapBytes = Math.ceil((blocks * 4) / 512) * 512;
  const offsetData = 0x200 + mapBytes;
  const buf = Buffer.alloc(offsetData + data.length * MiB);
  buf.write('<<< ferry test VDI Disk Image >>>\n', 0, 'latin1');
  buf.writeUInt32LE(0xbeda107f, VDI_OFF.signature);
  buf.writeUInt32LE(0x00010001, VDI_OFF.version);
  buf.writeUInt32LE(0x180, VDI_OFF.headerSize);
  buf.writeUInt32LE(spec.imageType ?? 1, VDI_OFF.imageType);
  buf.write('ferry corpus', 0x54, 'latin1');
  buf.writeUInt32LE(0x200, VDI_OFF.offsetBmap);
  buf.writeUInt32LE(offsetData, VDI_OFF.offsetData);
  buf.writeUInt32LE(512, VDI_OFF.sectorSize);
  buf.writeBigUInt64LE(BigInt(diskSize), VDI_OFF.diskSize);
  buf.writeUInt32LE(MiB, VDI_OFF.blockSize);
  buf.writeUInt32LE(blocks, VDI_OFF.blocksInImage);
  buf.writeUInt32LE(data.length, VDI_OFF.blocksAllocated);
  for (let i = 0; i < 16; i++) buf[VDI_OFF.uuidImage + i] = 0x10 + i;
  for (let b = 0; b < blocks; b++) buf.writeUInt32LE(0xffffffff, 0x200 + b * 4);
  for (const b of spec.discarded ?? []) buf.writeUInt32LE(0xfffffffe, 0x200 + b * 4);
  data.forEach((b, i) => {
    buf.writeUInt32LE(i, 0x200 + b * 4);
    vdiBlockPattern(b).copy(buf, offsetData + i * MiB);
  });
  return buf;
}

function patched(patch: (b: Buffer) => void, spec: VdiSpec = { data: [0, 2] }): Buffer {
  const b = buildVdi(spec);
  patch(b);
  return b;
}

const u32 = (at: number, v: number) => (b: Buffer) => b.writeUInt32LE(v >>> 0, at);

/** Malformed vdi images; see test/corpus/types.ts. */
export const vdiCases: MalformedCase[] = [
  {
    name: 'bad signature (declared vdi: the bytes are not a VDI)',
    files: { 'a.vdi': patched(u32(VDI_OFF.signature, 0xbeda1070)) },
    expect: ['FERRY_FORMAT_MISMATCH', 'FERRY_VDI_BAD_HEADER'],
    options: { format: 'vdi' },
  },
  {
    name: 'version 1.2',
    files: { 'a.vdi': patched(u32(VDI_OFF.version, 0x00010002)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'version 0.0 (pre-1.1 header layout)',
    files: { 'a.vdi': patched(u32(VDI_OFF.version, 0)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'header size too small',
    files: { 'a.vdi': patched(u32(VDI_OFF.headerSize, 0x20)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'unaligned block map offset',
    files: { 'a.vdi': patched(u32(VDI_OFF.offsetBmap, 0x201)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'unaligned data offset',
    files: {
      'a.vdi': patched((b) => b.writeUInt32LE(b.readUInt32LE(VDI_OFF.offsetData) + 8, 0x158)),
    },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'block map inside the header',
    files: { 'a.vdi': patched(u32(VDI_OFF.offsetBmap, 0)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'block map overlapping the data area',
    files: { 'a.vdi': patched(u32(VDI_OFF.offsetData, 0x200)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'block size 2 MiB',
    files: { 'a.vdi': patched(u32(VDI_OFF.blockSize, 2 * MiB)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'block size 0',
    files: { 'a.vdi': patched(u32(VDI_OFF.blockSize, 0)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'sector size 4096',
    files: { 'a.vdi': patched(u32(VDI_OFF.sectorSize, 4096)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'block extra data',
    files: { 'a.vdi': patched(u32(VDI_OFF.blockExtra, 512)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'blocks_in_image past qemu cap (0x40000000)',
    files: { 'a.vdi': patched(u32(VDI_OFF.blocksInImage, 0x40000000)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'blocks_in_image 0x3fffffff (4 GiB block map, over the table cap)',
    files: { 'a.vdi': patched(u32(VDI_OFF.blocksInImage, 0x3fffffff)) },
    expect: 'FERRY_IMAGE_LIMIT',
  },
  {
    name: 'blocks_in_image larger than the file holds',
    files: { 'a.vdi': patched(u32(VDI_OFF.blocksInImage, 0x100000)) },
    expect: ['FERRY_VDI_BAD_HEADER', 'FERRY_IMAGE_TRUNCATED'],
  },
  {
    name: 'disk size larger than the block map covers',
    files: {
      'a.vdi': patched((b) => b.writeBigUInt64LE(BigInt(4 * MiB + 512), VDI_OFF.diskSize)),
    },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'disk size 2^64-1',
    files: { 'a.vdi': patched((b) => b.fill(0xff, VDI_OFF.diskSize, VDI_OFF.diskSize + 8)) },
    expect: 'FERRY_IMAGE_TOO_LARGE',
  },
  {
    name: 'blocks_allocated larger than blocks_in_image',
    files: { 'a.vdi': patched(u32(VDI_OFF.blocksAllocated, 5)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
  {
    name: 'block map entry past blocks_allocated',
    files: { 'a.vdi': patched(u32(0x200 + 4, 2)) },
    expect: 'FERRY_VDI_BAD_BLOCK_MAP',
  },
  {
    name: 'block map entry 0x7fffffff',
    files: { 'a.vdi': patched(u32(0x200 + 12, 0x7fffffff)) },
    expect: 'FERRY_VDI_BAD_BLOCK_MAP',
  },
  {
    name: 'duplicate block map entry (two blocks share data block 0)',
    files: { 'a.vdi': patched(u32(0x200 + 8, 0)) },
    expect: 'FERRY_VDI_BAD_BLOCK_MAP',
  },
  {
    name: 'entry in the unused tail of the map pointing past blocks_allocated',
    files: {
      'a.vdi': patched((b) => b.writeUInt32LE(9, 0x200 + 6 * 4), {
        data: [0],
        blocksInImage: 8,
      }),
    },
    expect: 'FERRY_VDI_BAD_BLOCK_MAP',
  },
  {
    name: 'truncated file (last data block missing)',
    files: { 'a.vdi': buildVdi({ data: [0, 2] }).subarray(0, 0x400 + MiB + 4096) },
    expect: 'FERRY_IMAGE_TRUNCATED',
  },
  {
    name: 'truncated header',
    files: { 'a.vdi': buildVdi({ data: [0] }).subarray(0, 0x180) },
    expect: 'FERRY_IMAGE_TRUNCATED',
  },
  {
    name: 'differencing image type',
    files: { 'a.vdi': patched(u32(VDI_OFF.imageType, 4)) },
    expect: 'FERRY_VDI_DIFFERENCING',
  },
  {
    name: 'undo image type',
    files: { 'a.vdi': patched(u32(VDI_OFF.imageType, 3)) },
    expect: 'FERRY_VDI_DIFFERENCING',
  },
  {
    name: 'parent UUID set on a dynamic image',
    files: { 'a.vdi': patched((b) => b.fill(0x5a, VDI_OFF.uuidParent, VDI_OFF.uuidParent + 16)) },
    expect: 'FERRY_VDI_DIFFERENCING',
  },
  {
    name: 'link UUID set on a dynamic image',
    files: { 'a.vdi': patched((b) => b.writeUInt8(1, VDI_OFF.uuidLink + 15)) },
    expect: 'FERRY_VDI_DIFFERENCING',
  },
  {
    name: 'unknown image type',
    files: { 'a.vdi': patched(u32(VDI_OFF.imageType, 9)) },
    expect: 'FERRY_VDI_BAD_HEADER',
  },
];
