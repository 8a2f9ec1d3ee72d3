import { deflateSync } from 'node:zlib';
import type { MalformedCase } from './types.js';

/**
 * Builders for small VMDK images in memory (monolithicSparse and
 * streamOptimized laid out as VMware does), used by the malformed corpus and
 * the fuzz seeds, and the hostile variants derived from them.
 */

const SECTOR = 512;
const FLAG_NL = 0x1;
const FLAG_ZERO_GTE = 0x4;
const FLAG_COMPRESSED = 0x10000;
const FLAG_MARKERS = 0x20000;
const GD_AT_END = 0xffffffffffffffffn;

export interface VmdkSpec {
  /** Capacity in sectors (default 1000: 500 KiB, not a whole number of grains). */
  readonly capacity?: number;
  /** Grain size in sectors (default 16: 8 KiB). */
  readonly grainSize?: number;
  /** Entries per grain table (default 16). */
  readonly numGTEsPerGT?: number;
  /** Grains holding data: grain index to fill byte, or bytes. */
  readonly data?: Readonly<Record<number, number | Buffer>>;
  /** Grains whose entry is 1 (zeroed grain; sets flag 0x4). */
  readonly zero?: readonly number[];
  readonly createType?: string;
  /** Replaces the whole embedded descriptor text. */
  readonly descriptor?: string;
}

export interface VmdkLayout {
  readonly image: Buffer;
  readonly descriptorOffset: number;
  readonly descriptorBytes: number;
  /** Byte offset of the grain directory. */
  readonly gdOffset: number;
  readonly gdBytes: number;
  /** Byte offset of each grain table, by directory index (absent tables omitted). */
  readonly gtOffsets: ReadonlyMap<number, number>;
  /** Byte offset of each stored grain (its marker, for a stream). */
  readonly grainOffsets: ReadonlyMap<number, number>;
  /** Stream only: byte offset of the footer (the header copy), or -1. */
  readonly footerOffset: number;
}

export function descriptorText(
  createType: string,
  capacity: number,
  extentLines?: string,
  extra = '',
): string {
  return [
    '# Disk DescriptorFile',
    'version=1',
    'CID=12345678',
    'parentCID=ffffffff',
    `createType="${createType}"`,
    '',
    '# Extent description',
    extentLines ?? `RW ${capacity} SPARSE "disk.vmdk"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.virtualHWVersion = "4"',
    'ddb.adapterType = "lsilogic"',
    extra,
    '',
  ].join('\n');
}

interface HeaderInput {
  version: number;
  flags: number;
  capacity: number;
  grainSize: number;
  descriptorSize: number;
  numGTEsPerGT: number;
  gdOffset: bigint;
  overHead: number;
  compressAlgorithm: number;
}

export function sparseHeader(h: HeaderInput): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.write('KDMV', 0, 'latin1');
  b.writeUInt32LE(h.version, 4);
  b.writeUInt32LE(h.flags, 8);
  b.writeBigUInt64LE(BigInt(h.capacity), 12);
  b.writeBigUInt64LE(BigInt(h.grainSize), 20);
  b.writeBigUInt64LE(1n, 28);
  b.writeBigUInt64LE(BigInt(h.descriptorSize), 36);
  b.writeUInt32LE(h.numGTEsPerGT, 44);
  b.writeBigUInt64LE(0n, 48);
  b.writeBigUInt64LE(h.gdOffset, 56);
  b.writeBigUInt64LE(BigInt(h.overHead), 64);
  b.write('\n \r\n', 73, 'latin1');
  b.writeUInt16LE(h.compressAlgorithm, 77);
  return b;
}

function grainBytes(spec: VmdkSpec, g: number, size: number): Buffer {
  const v = spec.data?.[g];
  if (Buffer.isBuffer(v)) {
    const b = Buffer.alloc(size);
    v.copy(b);
    return b;
  }
  const b = Buffer.alloc(size);
  // A recognisable, not too compressible pattern.
  for (let i = 0; i < size; i++) b[i] = ((v ?? 0) + i * 7 + (i >> 9)) & 0xff;
  return b;
}

function sectors(bytes: number): number {
  return Math.ceil(bytes / SECTOR);
}

/** A monolithicSparse extent: header, descriptor, directory, tables, then grains. */
export function buildSparseVmdk(spec: VmdkSpec = {}): VmdkLayout {
  const capacity = spec.capacity ?? 1000;
  const grainSize = spec.grainSize ?? 16;
  const gtes = spec.numGTEsPerGT ?? 16;
  const gb = grainSize * SECTOR;
  const zero = spec.zero ?? [];
  const desc = Buffer.from(
    spec.descriptor ?? descriptorText(spec.createType ?? 'monolithicSparse', capacity),
    'latin1',
  );
  const descSectors = Math.max(1, sectors(desc.length));
  const gdEntries = Math.ceil(capacity / (gtes * grainSize));
  const gdSector = 1 + descSectors;
  const gdSectors = sectors(gdEntries * 4);
  const gtSectors = sectors(gtes * 4);
  const used = new Set<number>();
  for (const g of Object.keys(spec.data ?? {}).map(Number)) used.add(Math.floor(g / gtes));
  for (const g of zero) used.add(Math.floor(g / gtes));
  const gtOffsets = new Map<number, number>();
  let next = gdSector + gdSectors;
  for (const t of [...used].sort((a, b) => a - b)) {
    gtOffsets.set(t, next * SECTOR);
    next += gtSectors;
  }
  const overHead = Math.ceil(next / grainSize) * grainSize;
  const grains = Object.keys(spec.data ?? {})
    .map(Number)
    .sort((a, b) => a - b);
  const total = (overHead + grains.length * grainSize) * SECTOR;
  const image = Buffer.alloc(total);
  sparseHeader({
    version: zero.length > 0 ? 2 : 1,
    flags: FLAG_NL | (zero.length > 0 ? FLAG_ZERO_GTE : 0),
    capacity,
    grainSize,
    descriptorSize: descSectors,
    numGTEsPerGT: gtes,
    gdOffset: BigInt(gdSector),
    overHead,
    compressAlgorithm: 0,
  }).copy(image, 0);
  desc.copy(image, SECTOR);
  for (const [t, off] of gtOffsets) image.writeUInt32LE(off / SECTOR, gdSector * SECTOR + t * 4);
  const grainOffsets = new Map<number, number>();
  grains.forEach((g, i) => {
    const off = (overHead + i * grainSize) * SECTOR;
    grainOffsets.set(g, off);
    grainBytes(spec, g, gb).copy(image, off);
    const gt = gtOffsets.get(Math.floor(g / gtes))!;
    image.writeUInt32LE(off / SECTOR, gt + (g % gtes) * 4);
  });
  for (const g of zero) {
    image.writeUInt32LE(1, gtOffsets.get(Math.floor(g / gtes))! + (g % gtes) * 4);
  }
  return {
    image,
    descriptorOffset: SECTOR,
    descriptorBytes: descSectors * SECTOR,
    gdOffset: gdSector * SECTOR,
    gdBytes: gdEntries * 4,
    gtOffsets,
    grainOffsets,
    footerOffset: -1,
  };
}

function metadataMarker(numSectors: number, type: number): Buffer {
  const m = Buffer.alloc(SECTOR);
  m.writeBigUInt64LE(BigInt(numSectors), 0);
  m.writeUInt32LE(type, 12);
  return m;
}

/**
 * A streamOptimized extent as VMware lays it out: header with GD_AT_END,
 * descriptor, grain markers, a GT marker and table after each table's grains,
 * GD marker and directory, footer marker, footer, end-of-stream marker.
 * `packGrain` may replace a grain's compressed bytes (hostile cases).
 */
export function buildStreamVmdk(
  spec: VmdkSpec = {},
  packGrain?: (grain: number, raw: Buffer) => Buffer,
): VmdkLayout {
  const capacity = spec.capacity ?? 1000;
  const grainSize = spec.grainSize ?? 16;
  const gtes = spec.numGTEsPerGT ?? 16;
  const gb = grainSize * SECTOR;
  const desc = Buffer.from(
    spec.descriptor ?? descriptorText(spec.createType ?? 'streamOptimized', capacity),
    'latin1',
  );
  const descSectors = Math.max(1, sectors(desc.length));
  const overHead = 1 + descSectors;
  const gdEntries = Math.ceil(capacity / (gtes * grainSize));
  const gtSectors = sectors(gtes * 4);
  const parts: Buffer[] = [];
  let pos = overHead * SECTOR;
  const push = (b: Buffer): number => {
    const at = pos;
    parts.push(b);
    pos += b.length;
    return at;
  };
  const gd = Buffer.alloc(sectors(gdEntries * 4) * SECTOR);
  const gtOffsets = new Map<number, number>();
  const grainOffsets = new Map<number, number>();
  const grains = Object.keys(spec.data ?? {})
    .map(Number)
    .sort((a, b) => a - b);
  let gt: Buffer | undefined;
  let gtIndex = -1;
  const flushGt = (): void => {
    if (gt === undefined) return;
    push(metadataMarker(gtSectors, 1));
    const at = push(gt);
    gtOffsets.set(gtIndex, at);
    gd.writeUInt32LE(at / SECTOR, gtIndex * 4);
    gt = undefined;
  };
  for (const g of grains) {
    const t = Math.floor(g / gtes);
    if (t !== gtIndex) {
      flushGt();
      gt = Buffer.alloc(gtSectors * SECTOR);
      gtIndex = t;
    }
    const raw = grainBytes(spec, g, gb);
    const packed = packGrain?.(g, raw) ?? deflateSync(raw);
    const m = Buffer.alloc(sectors(12 + packed.length) * SECTOR);
    m.writeBigUInt64LE(BigInt(g * grainSize), 0);
    m.writeUInt32LE(packed.length, 8);
    packed.copy(m, 12);
    const at = push(m);
    grainOffsets.set(g, at);
    gt!.writeUInt32LE(at / SECTOR, (g % gtes) * 4);
  }
  flushGt();
  push(metadataMarker(gd.length / SECTOR, 2));
  const gdAt = push(gd);
  push(metadataMarker(1, 3));
  const fields = {
    version: 3,
    flags: FLAG_NL | FLAG_COMPRESSED | FLAG_MARKERS,
    capacity,
    grainSize,
    descriptorSize: descSectors,
    numGTEsPerGT: gtes,
    overHead,
    compressAlgorithm: 1,
  };
  const footerOffset = push(sparseHeader({ ...fields, gdOffset: BigInt(gdAt / SECTOR) }));
  push(Buffer.alloc(SECTOR));
  const head = Buffer.alloc(overHead * SECTOR);
  sparseHeader({ ...fields, gdOffset: GD_AT_END }).copy(head, 0);
  desc.copy(head, SECTOR);
  return {
    image: Buffer.concat([head, ...parts]),
    descriptorOffset: SECTOR,
    descriptorBytes: descSectors * SECTOR,
    gdOffset: gdAt,
    gdBytes: gdEntries * 4,
    gtOffsets,
    grainOffsets,
    footerOffset,
  };
}

/** Copies an image and applies `patch` to the copy. */
function patched(image: Buffer, patch: (b: Buffer) => void): Buffer {
  const b = Buffer.from(image);
  patch(b);
  return b;
}

const sparse = buildSparseVmdk({ data: { 0: 1, 5: 2, 17: 3, 62: 4 }, zero: [3] });
const stream = buildStreamVmdk({ data: { 0: 1, 5: 2, 17: 3, 62: 4 } });
const S = sparse.image;
const T = stream.image;
const firstGt = sparse.gtOffsets.get(0)!;
const streamGrain5 = stream.grainOffsets.get(5)!;

function flatDescriptor(extentLines: string, createType = 'monolithicFlat'): Buffer {
  return Buffer.from(descriptorText(createType, 2048, extentLines), 'latin1');
}

/** Malformed vmdk images; see test/corpus/types.ts. */
export const vmdkCases: MalformedCase[] = [
  {
    name: 'truncated sparse header',
    files: { 'a.vmdk': S.subarray(0, 300) },
    expect: 'FERRY_IMAGE_TRUNCATED',
  },
  {
    name: 'newline check bytes damaged by a text-mode transfer',
    files: { 'a.vmdk': patched(S, (b) => b.write('\n \n\n', 73, 'latin1')) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'version 4',
    files: { 'a.vmdk': patched(S, (b) => b.writeUInt32LE(4, 4)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'grainSize 0',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(0n, 20)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'grainSize not a power of two',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(24n, 20)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'grainSize over 1 GiB',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(0x400000n, 20)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'grainSize over 2^53',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(1n << 60n, 20)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'numGTEsPerGT 0',
    files: { 'a.vmdk': patched(S, (b) => b.writeUInt32LE(0, 44)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'numGTEsPerGT 513',
    files: { 'a.vmdk': patched(S, (b) => b.writeUInt32LE(513, 44)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'capacity over 64 TiB',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(1n << 40n, 12)) },
    expect: 'FERRY_IMAGE_TOO_LARGE',
  },
  {
    name: 'grain directory of 2^34 entries (64 TiB in 4 KiB grains, 1-entry tables)',
    files: {
      'a.vmdk': patched(S, (b) => {
        b.writeBigUInt64LE(1n << 37n, 12);
        b.writeBigUInt64LE(8n, 20);
        b.writeUInt32LE(1, 44);
      }),
    },
    expect: 'FERRY_IMAGE_LIMIT',
  },
  {
    name: 'grain directory larger than the file (512 GiB disk in a tiny file)',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(1n << 30n, 12)) },
    expect: 'FERRY_IMAGE_TRUNCATED',
  },
  {
    name: 'grain directory offset past EOF',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(1_000_000n, 56)) },
    expect: 'FERRY_IMAGE_TRUNCATED',
  },
  {
    name: 'grain table offset past EOF',
    files: { 'a.vmdk': patched(S, (b) => b.writeUInt32LE(0x7fffffff, sparse.gdOffset)) },
    expect: 'FERRY_IMAGE_TRUNCATED',
  },
  {
    name: 'grain table inside the header',
    files: { 'a.vmdk': patched(S, (b) => b.writeUInt32LE(1, sparse.gdOffset)) },
    expect: 'FERRY_IMAGE_CORRUPT',
  },
  {
    name: 'two directory entries share one grain table (a cheap walk of many grains)',
    files: {
      'a.vmdk': patched(S, (b) =>
        b.writeUInt32LE(b.readUInt32LE(sparse.gdOffset), sparse.gdOffset + 12),
      ),
    },
    expect: 'FERRY_IMAGE_CORRUPT',
  },
  {
    name: 'grain table entry past EOF',
    files: { 'a.vmdk': patched(S, (b) => b.writeUInt32LE(0x7fffffff, firstGt + 5 * 4)) },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'grain table entry pointing into the descriptor',
    files: {
      // Without the zeroed-grain flag, an entry of 1 is sector 1: the descriptor.
      'a.vmdk': (() => {
        const l = buildSparseVmdk({ data: { 0: 1, 2: 2 } });
        return patched(l.image, (b) => b.writeUInt32LE(1, l.gtOffsets.get(0)! + 2 * 4));
      })(),
    },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'last grain cut short by truncation',
    files: { 'a.vmdk': S.subarray(0, S.length - 6000) },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'capacity 0 with a descriptor offset (disguised descriptor file)',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(0n, 12)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'no embedded descriptor (an extent of a multi-extent disk)',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(0n, 28)) },
    expect: 'FERRY_VMDK_UNSUPPORTED_TYPE',
  },
  {
    name: 'embedded descriptor over 1 MiB',
    files: { 'a.vmdk': patched(S, (b) => b.writeBigUInt64LE(4096n, 36)) },
    expect: 'FERRY_VMDK_BAD_DESCRIPTOR',
  },
  {
    name: 'compressed flag with compression algorithm 0',
    files: { 'a.vmdk': patched(S, (b) => b.writeUInt32LE(b.readUInt32LE(8) | FLAG_COMPRESSED, 8)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'unknown compression algorithm',
    files: { 'a.vmdk': patched(T, (b) => b.writeUInt16LE(7, 77)) },
    expect: 'FERRY_VMDK_BAD_HEADER',
  },
  {
    name: 'embedded descriptor with a parent (differencing disk)',
    files: {
      'a.vmdk': buildSparseVmdk({
        data: { 0: 1 },
        descriptor: descriptorText('monolithicSparse', 1000).replace(
          'parentCID=ffffffff',
          'parentCID=0badc0de\nparentFileNameHint="base.vmdk"',
        ),
      }).image,
      'base.vmdk': S,
    },
    expect: 'FERRY_VMDK_DIFFERENCING',
  },
  {
    name: 'embedded descriptor of type twoGbMaxExtentSparse',
    files: {
      'a.vmdk': buildSparseVmdk({ data: { 0: 1 }, createType: 'twoGbMaxExtentSparse' }).image,
    },
    expect: 'FERRY_VMDK_UNSUPPORTED_TYPE',
  },
  {
    name: 'embedded descriptor with two extents',
    files: {
      'a.vmdk': buildSparseVmdk({
        data: { 0: 1 },
        descriptor: descriptorText(
          'monolithicSparse',
          1000,
          'RW 500 SPARSE "a.vmdk"\nRW 500 SPARSE "b.vmdk"',
        ),
      }).image,
    },
    expect: 'FERRY_VMDK_UNSUPPORTED_TYPE',
  },
  {
    name: 'embedded descriptor whose extent is an absolute path',
    files: {
      'a.vmdk': buildSparseVmdk({
        data: { 0: 1 },
        descriptor: descriptorText('monolithicSparse', 1000, 'RW 1000 SPARSE "/etc/passwd"'),
      }).image,
    },
    expect: 'FERRY_VMDK_EXTENT_PATH',
  },
  {
    name: 'embedded descriptor with non-ASCII bytes',
    files: {
      'a.vmdk': buildSparseVmdk({
        data: { 0: 1 },
        descriptor: descriptorText(
          'monolithicSparse',
          1000,
          undefined,
          'ddb.comment = "caf\u00e9"',
        ),
      }).image,
    },
    expect: 'FERRY_VMDK_BAD_DESCRIPTOR',
  },
  {
    name: 'embedded descriptor with an unrecognised line',
    files: {
      'a.vmdk': buildSparseVmdk({
        data: { 0: 1 },
        descriptor: descriptorText(
          'monolithicSparse',
          1000,
          undefined,
          'this is not a descriptor line',
        ),
      }).image,
    },
    expect: 'FERRY_VMDK_BAD_DESCRIPTOR',
  },
  {
    name: 'COWD (vmfsSparse) extent',
    files: { 'a.vmdk': patched(S, (b) => b.write('COWD', 0, 'latin1')) },
    expect: 'FERRY_VMDK_UNSUPPORTED_TYPE',
  },
  {
    name: 'stream: compressed grains of 4 MiB (over the inflate cap)',
    files: { 'a.vmdk': patched(T, (b) => b.writeBigUInt64LE(8192n, 20)) },
    expect: 'FERRY_IMAGE_LIMIT',
  },
  {
    name: 'stream: compressed grains without grain markers',
    files: { 'a.vmdk': patched(T, (b) => b.writeUInt32LE(FLAG_NL | FLAG_COMPRESSED, 8)) },
    expect: 'FERRY_FORMAT_UNSUPPORTED',
  },
  {
    name: 'stream: grain marker LBA mismatch',
    files: { 'a.vmdk': patched(T, (b) => b.writeBigUInt64LE(16n * 6n, streamGrain5)) },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'stream: grain marker size past EOF',
    files: {
      'a.vmdk': patched(T, (b) => b.writeUInt32LE(16000, stream.grainOffsets.get(62)! + 8)),
    },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'stream: grain marker size 0 (a metadata marker where a grain should be)',
    files: { 'a.vmdk': patched(T, (b) => b.writeUInt32LE(0, streamGrain5 + 8)) },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'stream: grain marker size over two grains',
    files: { 'a.vmdk': patched(T, (b) => b.writeUInt32LE(0x7fffffff, streamGrain5 + 8)) },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'stream: grain inflates to the wrong length',
    files: {
      'a.vmdk': buildStreamVmdk({ data: { 0: 1, 5: 2 } }, (g, raw) =>
        deflateSync(g === 5 ? raw.subarray(0, 1000) : raw),
      ).image,
    },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'stream: decompression bomb grain (8 MiB of zeros in an 8 KiB grain)',
    files: {
      'a.vmdk': buildStreamVmdk({ data: { 0: 1, 5: 2 } }, (g, raw) =>
        g === 5 ? deflateSync(Buffer.alloc(8 * 1024 * 1024), { level: 9 }) : deflateSync(raw),
      ).image,
    },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'stream: corrupt zlib data',
    files: {
      'a.vmdk': patched(T, (b) => b.fill(0x5a, streamGrain5 + 14, streamGrain5 + 40)),
    },
    expect: 'FERRY_VMDK_BAD_GRAIN',
  },
  {
    name: 'stream: footer missing (GD_AT_END, last 1536 bytes cut)',
    files: { 'a.vmdk': T.subarray(0, T.length - 1536) },
    expect: 'FERRY_VMDK_BAD_FOOTER',
  },
  {
    name: 'stream: end-of-stream marker missing (last sector cut)',
    files: { 'a.vmdk': T.subarray(0, T.length - 512) },
    expect: 'FERRY_VMDK_BAD_FOOTER',
  },
  {
    name: 'stream: end-of-stream marker of the wrong type',
    files: { 'a.vmdk': patched(T, (b) => b.writeUInt32LE(1, b.length - 512 + 12)) },
    expect: 'FERRY_VMDK_BAD_FOOTER',
  },
  {
    name: 'stream: footer marker of the wrong type',
    files: { 'a.vmdk': patched(T, (b) => b.writeUInt32LE(2, stream.footerOffset - 512 + 12)) },
    expect: 'FERRY_VMDK_BAD_FOOTER',
  },
  {
    name: 'stream: footer without the KDMV magic',
    files: { 'a.vmdk': patched(T, (b) => b.write('XXXX', stream.footerOffset, 'latin1')) },
    expect: 'FERRY_VMDK_BAD_FOOTER',
  },
  {
    name: 'stream: footer also says GD_AT_END',
    files: { 'a.vmdk': patched(T, (b) => b.writeBigUInt64LE(GD_AT_END, stream.footerOffset + 56)) },
    expect: 'FERRY_VMDK_BAD_FOOTER',
  },
  {
    name: 'stream: footer capacity differs from the header',
    files: { 'a.vmdk': patched(T, (b) => b.writeBigUInt64LE(2000n, stream.footerOffset + 12)) },
    expect: 'FERRY_VMDK_BAD_FOOTER',
  },
  {
    name: 'stream: footer grain directory past EOF',
    files: { 'a.vmdk': patched(T, (b) => b.writeBigUInt64LE(1n << 40n, stream.footerOffset + 56)) },
    expect: 'FERRY_IMAGE_TRUNCATED',
  },
  {
    name: 'descriptor file: "../x" extent',
    files: { 'd.vmdk': flatDescriptor('RW 2048 FLAT "../x" 0') },
    expect: 'FERRY_VMDK_EXTENT_PATH',
    options: { allowFlatExtents: true },
  },
  {
    name: 'descriptor file: absolute /etc/passwd extent',
    files: { 'd.vmdk': flatDescriptor('RW 2048 FLAT "/etc/passwd" 0') },
    expect: 'FERRY_VMDK_EXTENT_PATH',
    options: { allowFlatExtents: true },
  },
  {
    name: 'descriptor file: extent in a subdirectory',
    files: { 'd.vmdk': flatDescriptor('RW 2048 FLAT "sub/x-flat.vmdk" 0') },
    expect: 'FERRY_VMDK_EXTENT_PATH',
    options: { allowFlatExtents: true },
  },
  {
    name: 'descriptor file: flat extent without allowFlatExtents',
    files: {
      'd.vmdk': flatDescriptor('RW 2048 FLAT "d-flat.vmdk" 0'),
      'd-flat.vmdk': Buffer.alloc(2048 * SECTOR, 1),
    },
    expect: 'FERRY_VMDK_EXTENT_PATH',
  },
  {
    name: 'descriptor file: flat extent shorter than declared',
    files: {
      'd.vmdk': flatDescriptor('RW 2048 FLAT "d-flat.vmdk" 0'),
      'd-flat.vmdk': Buffer.alloc(1000 * SECTOR, 1),
    },
    expect: 'FERRY_IMAGE_TRUNCATED',
    options: { allowFlatExtents: true },
  },
  {
    name: 'descriptor file: twoGbMaxExtentSparse',
    files: {
      'd.vmdk': flatDescriptor('RW 2048 SPARSE "d-s001.vmdk"', 'twoGbMaxExtentSparse'),
      'd-s001.vmdk': S,
    },
    expect: 'FERRY_VMDK_UNSUPPORTED_TYPE',
    options: { allowFlatExtents: true },
  },
  {
    name: 'descriptor file: vmfs raw device mapping',
    files: { 'd.vmdk': flatDescriptor('RW 2048 VMFSRDM "d-rdm.vmdk"', 'vmfsRawDeviceMap') },
    expect: 'FERRY_VMDK_UNSUPPORTED_TYPE',
    options: { allowFlatExtents: true },
  },
  {
    name: 'descriptor file: monolithicFlat with two extents',
    files: {
      'd.vmdk': flatDescriptor('RW 1024 FLAT "a-flat.vmdk" 0\nRW 1024 FLAT "b-flat.vmdk" 0'),
      'a-flat.vmdk': Buffer.alloc(1024 * SECTOR),
      'b-flat.vmdk': Buffer.alloc(1024 * SECTOR),
    },
    expect: 'FERRY_VMDK_UNSUPPORTED_TYPE',
    options: { allowFlatExtents: true },
  },
  {
    name: 'descriptor file over 1 MiB',
    files: {
      'd.vmdk': Buffer.concat([
        flatDescriptor('RW 2048 FLAT "d-flat.vmdk" 0'),
        Buffer.from(`# ${'x'.repeat(1024 * 1024)}\n`, 'latin1'),
      ]),
      'd-flat.vmdk': Buffer.alloc(2048 * SECTOR),
    },
    expect: 'FERRY_VMDK_BAD_DESCRIPTOR',
    options: { allowFlatExtents: true },
  },
  {
    name: 'descriptor file with a parent (differencing)',
    files: {
      'd.vmdk': Buffer.from(
        descriptorText('monolithicFlat', 2048, 'RW 2048 FLAT "d-flat.vmdk" 0').replace(
          'parentCID=ffffffff',
          'parentCID=12345678',
        ),
        'latin1',
      ),
      'd-flat.vmdk': Buffer.alloc(2048 * SECTOR),
    },
    expect: 'FERRY_VMDK_DIFFERENCING',
    options: { allowFlatExtents: true },
  },
];
