import { F, H } from '../../src/disk/formats/vhd/constants.js';
import { encodeDynamicHeader } from '../../src/disk/formats/vhd/dynamic-header.js';
import { encodeFooter, type Geometry, sealChecksum } from '../../src/disk/formats/vhd/footer.js';
import type { MalformedCase } from './types.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Where the pieces of a built VHD lie, for tests that patch them. */
export interface VhdLayout {
  readonly fixed: boolean;
  readonly headerOffset: number;
  readonly batOffset: number;
  readonly entries: number;
  readonly blockSize: number;
  /** File offset of each stored block's sector bitmap. */
  readonly blockOffsets: ReadonlyMap<number, number>;
  readonly footerOffset: number;
}

export interface VhdSpec {
  readonly fixed?: boolean;
  /** Virtual disk size (default 8 MiB); a multiple of 512. */
  readonly virtualSize?: number;
  /** Dynamic block size (default 1 MiB). */
  readonly blockSize?: number;
  /** Dynamic: blocks stored with blockPattern, in this file order. */
  readonly data?: readonly number[];
  readonly creatorApp?: string;
  readonly geometry?: Geometry;
  /** Dynamic: unused bytes between the last block and the footer (default 0). */
  readonly slack?: number;
}

/** The bytes of block `block` as the builder stores them (clipped to `length`). */
export function blockPattern(block: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  for (let s = 0; s < length; s += 512) {
    buf.fill((block * 37 + s / 512 + 1) & 0xff, s, Math.min(s + 512, length));
    if (s + 8 <= length) buf.writeUInt32BE(block * 0x10000 + s / 512, s);
  }
  return buf;
}

/**
 * Builds a small, valid VHD in memory. Dynamic: footer copy, header at 512,
 * BAT at 1536, blocks packed after it (qemu's layout), footer. Fixed: the
 * disk (a pattern in each 1 MiB) then the footer.
 */
export function buildVhd(spec: VhdSpec = {}): { image: Buffer; layout: VhdLayout } {
  const virtualSize = spec.virtualSize ?? 8 * MiB;
  const blockSize = spec.blockSize ?? MiB;
  const footerOpts = {
    currentSize: virtualSize,
    ...(spec.creatorApp === undefined ? {} : { creatorApp: spec.creatorApp }),
    ...(spec.geometry === undefined ? {} : { geometry: spec.geometry }),
  };
  if (spec.fixed === true) {
    const image = Buffer.alloc(virtualSize + 512);
    for (let off = 0, b = 0; off < virtualSize; off += MiB, b++) {
      blockPattern(b, Math.min(4096, virtualSize - off)).copy(image, off);
    }
    encodeFooter({ diskType: 2, ...footerOpts }).copy(image, virtualSize);
    return {
      image,
      layout: {
        fixed: true,
        headerOffset: 0,
        batOffset: 0,
        entries: 0,
        blockSize: 0,
        blockOffsets: new Map(),
        footerOffset: virtualSize,
      },
    };
  }
  const entries = Math.ceil(virtualSize / blockSize);
  const batOffset = 1536;
  const batBytes = Math.ceil((entries * 4) / 512) * 512;
  const bitmap = Math.ceil(blockSize / 512 / 8 / 512) * 512;
  const data = spec.data ?? [];
  const first = batOffset + batBytes;
  const blockOffsets = new Map<number, number>();
  for (const [i, b] of data.entries()) blockOffsets.set(b, first + i * (bitmap + blockSize));
  const footerOffset = first + data.length * (bitmap + blockSize) + (spec.slack ?? 0);
  const image = Buffer.alloc(footerOffset + 512);
  const footer = encodeFooter({ diskType: 3, dataOffset: 512, ...footerOpts });
  footer.copy(image, 0);
  footer.copy(image, footerOffset);
  encodeDynamicHeader({ tableOffset: batOffset, maxTableEntries: entries, blockSize }).copy(
    image,
    512,
  );
  image.fill(0xff, batOffset, batOffset + entries * 4);
  for (const [b, off] of blockOffsets) {
    image.writeUInt32BE(off / 512, batOffset + b * 4);
    image.fill(0xff, off, off + bitmap);
    blockPattern(b, blockSize).copy(image, off + bitmap);
  }
  return {
    image,
    layout: {
      fixed: false,
      headerOffset: 512,
      batOffset,
      entries,
      blockSize,
      blockOffsets,
      footerOffset,
    },
  };
}

/**
 * Recomputes the checksums: of the footer at the end, of the footer copy at
 * 0 (which is then copied over the end, so the two agree) and of the dynamic
 * header at 512, each where its cookie is present.
 */
export function resealVhd(image: Buffer): void {
  if (image.length < 1024) return;
  const tailAt = image.length - 512;
  const tail = image.subarray(tailAt);
  if (tail.toString('latin1', 0, 8) === 'conectix') sealChecksum(tail, F.checksum);
  const head = image.subarray(0, 512);
  if (head.toString('latin1', 0, 8) === 'conectix') {
    sealChecksum(head, F.checksum);
    if (tail.toString('latin1', 0, 8) === 'conectix') head.copy(image, tailAt);
  }
  if (image.length >= 2048 && image.toString('latin1', 512, 520) === 'cxsparse') {
    sealChecksum(image.subarray(512, 1536), H.checksum);
  }
}

/** Patches both footer copies of a dynamic image (or the only one of a fixed image). */
export function patchFooters(image: Buffer, fn: (footer: Buffer) => void): void {
  const tail = image.subarray(image.length - 512);
  fn(tail);
  if (image.toString('latin1', 0, 8) === 'conectix') fn(image.subarray(0, 512));
}

/** Builds an image, lets `patch` damage it, then reseals the checksums unless told not to. */
function patched(
  patch: (image: Buffer, layout: VhdLayout) => unknown,
  spec: VhdSpec = { data: [0, 3, 5], slack: 3 * MiB },
  reseal = true,
): Buffer {
  const { image, layout } = buildVhd(spec);
  const result = patch(image, layout);
  const out = Buffer.isBuffer(result) ? result : image;
  if (reseal) resealVhd(out);
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
      return { 'disk.vhd': build() };
    },
    ...(options === undefined ? {} : { options }),
  };
}

const setU32 = (at: number, v: number) => (f: Buffer) => f.writeUInt32BE(v >>> 0, at);
const setU64 = (at: number, v: bigint) => (f: Buffer) => f.writeBigUInt64BE(v, at);
const FIXED: VhdSpec = { fixed: true, virtualSize: 4 * MiB };

/** Malformed VHD images; see test/corpus/types.ts. */
export const vhdCases: MalformedCase[] = [
  lazyCase('fixed footer checksum wrong', 'FERRY_VHD_BAD_CHECKSUM', () =>
    patched(
      (img) => patchFooters(img, (f) => f.writeUInt32BE(0x12345678, F.checksum)),
      FIXED,
      false,
    ),
  ),
  lazyCase('dynamic footer checksum wrong (both copies)', 'FERRY_VHD_BAD_CHECKSUM', () =>
    patched((img) => patchFooters(img, (f) => (f[F.checksum + 3]! ^= 1)), undefined, false),
  ),
  lazyCase('footer copies differ (AWS: Footers not identical)', 'FERRY_VHD_FOOTER_MISMATCH', () =>
    patched(
      (img) => {
        img[F.uuid] = img[F.uuid]! ^ 0xff;
        sealChecksum(img.subarray(0, 512), F.checksum);
      },
      undefined,
      false,
    ),
  ),
  lazyCase('dynamic VHD without the footer copy at 0', 'FERRY_VHD_FOOTER_MISMATCH', () =>
    patched((img) => img.fill(0, 0, 512), undefined, false),
  ),
  lazyCase(
    'fixed VHD whose first sector is also a footer (qemu reads it as dynamic)',
    'FERRY_VHD_FOOTER_MISMATCH',
    () => patched((img) => img.copy(img, 0, img.length - 512), FIXED, false),
  ),
  lazyCase('dynamic VHD truncated (no trailing footer)', 'FERRY_IMAGE_TRUNCATED', () =>
    patched((img) => img.subarray(0, img.length - 700_000), undefined, false),
  ),
  lazyCase('fixed VHD shorter than its current size', 'FERRY_IMAGE_TRUNCATED', () =>
    patched((img) => patchFooters(img, setU64(F.currentSize, BigInt(5 * MiB))), FIXED),
  ),
  lazyCase(
    'CHS-sized ("vpc ") fixed VHD whose geometry exceeds the file',
    'FERRY_IMAGE_TRUNCATED',
    () =>
      patched(() => {}, {
        ...FIXED,
        creatorApp: 'vpc ',
        geometry: { cylinders: 1024, heads: 16, sectorsPerTrack: 63 },
      }),
  ),
  lazyCase('differencing disk (type 4)', 'FERRY_VHD_DIFFERENCING', () =>
    patched((img) => patchFooters(img, setU32(F.diskType, 4))),
  ),
  lazyCase('unknown disk type 5', 'FERRY_VHD_BAD_FOOTER', () =>
    patched((img) => patchFooters(img, setU32(F.diskType, 5))),
  ),
  lazyCase('disk type 0', 'FERRY_VHD_BAD_FOOTER', () =>
    patched((img) => patchFooters(img, setU32(F.diskType, 0)), FIXED),
  ),
  lazyCase('footer format version 2.0', 'FERRY_VHD_BAD_FOOTER', () =>
    patched((img) => patchFooters(img, setU32(F.version, 0x00020000))),
  ),
  lazyCase('current size above 2^53', 'FERRY_IMAGE_TOO_LARGE', () =>
    patched((img) => patchFooters(img, setU64(F.currentSize, 0xffffffffffffff00n))),
  ),
  lazyCase('size over 2040 GiB', 'FERRY_IMAGE_TOO_LARGE', () =>
    patched((img) => patchFooters(img, setU64(F.currentSize, BigInt(2041 * GiB)))),
  ),
  lazyCase('dynamic header offset past the end of the file', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => patchFooters(img, setU64(F.dataOffset, 1n << 40n))),
  ),
  lazyCase('dynamic header offset 0 (over the footer copy)', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => patchFooters(img, setU64(F.dataOffset, 0n))),
  ),
  lazyCase('dynamic header offset above 2^53', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => patchFooters(img, setU64(F.dataOffset, 0xffffffffffffffffn))),
  ),
  lazyCase('dynamic header cookie wrong', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => img.write('cxsparsf', 512, 'latin1')),
  ),
  lazyCase('dynamic header checksum wrong', 'FERRY_VHD_BAD_CHECKSUM', () =>
    patched((img) => (img[512 + H.checksum]! ^= 0x10), undefined, false),
  ),
  lazyCase('dynamic header version 2.0', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => img.writeUInt32BE(0x00020000, 512 + H.version)),
  ),
  lazyCase('block size 0', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => img.writeUInt32BE(0, 512 + H.blockSize)),
  ),
  lazyCase('block size not a power of two (3 MiB)', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => img.writeUInt32BE(3 * MiB, 512 + H.blockSize)),
  ),
  lazyCase(
    'block size 512 (qemu and the spec disagree on its bitmap)',
    'FERRY_VHD_BAD_HEADER',
    () => patched((img) => img.writeUInt32BE(512, 512 + H.blockSize)),
  ),
  lazyCase('max table entries 0xffffffff', 'FERRY_IMAGE_LIMIT', () =>
    patched((img) => img.writeUInt32BE(0xffffffff, 512 + H.maxTableEntries)),
  ),
  lazyCase('max table entries past the end of the file', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => img.writeUInt32BE(4 * 1024 * 1024, 512 + H.maxTableEntries)),
  ),
  lazyCase('BAT too small for the disk size', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => img.writeUInt32BE(7, 512 + H.maxTableEntries)),
  ),
  lazyCase('BAT offset above 2^53', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => img.writeBigUInt64BE(0xfff0000000000000n, 512 + H.tableOffset)),
  ),
  lazyCase('BAT overlapping the dynamic header', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img) => img.writeBigUInt64BE(1024n, 512 + H.tableOffset)),
  ),
  lazyCase('BAT entry past the end of the file', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img, l) => img.writeUInt32BE(0x00ffffff, l.batOffset + 4)),
  ),
  lazyCase('BAT entry reaching into the trailing footer', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img, l) =>
      img.writeUInt32BE((l.footerOffset - 512 - 1024 * 1024 + 512) / 512, l.batOffset + 5 * 4),
    ),
  ),
  lazyCase('two BAT entries pointing at the same block', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img, l) => img.writeUInt32BE(l.blockOffsets.get(3)! / 512, l.batOffset + 7 * 4)),
  ),
  lazyCase('BAT entries overlapping by one sector', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img, l) => img.writeUInt32BE(l.blockOffsets.get(3)! / 512 + 1, l.batOffset + 5 * 4)),
  ),
  lazyCase('BAT entry over the dynamic header', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img, l) => img.writeUInt32BE(1, l.batOffset + 2 * 4)),
  ),
  lazyCase('BAT entry over the BAT itself', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img, l) => img.writeUInt32BE(l.batOffset / 512, l.batOffset + 2 * 4)),
  ),
  lazyCase('BAT entry over the footer copy at 0', 'FERRY_VHD_BAD_HEADER', () =>
    patched((img, l) => img.writeUInt32BE(0, l.batOffset + 2 * 4)),
  ),
  lazyCase('many BAT entries all pointing at one block', 'FERRY_VHD_BAD_HEADER', () =>
    patched(
      (img, l) => {
        const at = l.blockOffsets.get(0)! / 512;
        for (let b = 0; b < l.entries; b++) img.writeUInt32BE(at, l.batOffset + b * 4);
      },
      { virtualSize: 64 * MiB, blockSize: 4096, data: [0] },
    ),
  ),
];
