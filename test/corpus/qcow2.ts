import { deflateRawSync } from 'node:zlib';
import type { MalformedCase } from './types.js';

/** One guest cluster of a built image. */
export interface BuiltCluster {
  readonly index: number;
  /** `sub`: extended L2 only, with explicit allocation/zero bitmaps. */
  readonly kind: 'data' | 'zero' | 'compressed' | 'sub';
  /** Byte the cluster is filled with (data is `fill ^ (offset & 7)` so it is not uniform). */
  readonly fill?: number;
  /** Compressed payload to store instead of compressing the cluster. */
  readonly payload?: Buffer;
  readonly alloc?: number;
  readonly zero?: number;
}

export interface Qcow2BuildOptions {
  readonly version?: 2 | 3;
  readonly clusterBits?: number;
  readonly size?: number;
  readonly extendedL2?: boolean;
  readonly compression?: 'deflate' | 'zstd';
  readonly clusters?: readonly BuiltCluster[];
}

export interface Qcow2Layout {
  readonly clusterSize: number;
  readonly headerLength: number;
  readonly refcountTableOffset: number;
  readonly l1Offset: number;
  readonly l1Size: number;
  /** L2 table offset per L1 index (0 when unallocated). */
  readonly l2Offsets: readonly number[];
  /** Host offset of each data cluster, and of each compressed cluster's data. */
  readonly hosts: ReadonlyMap<number, number>;
  /** Guest bytes of each built cluster, for checking reads. */
  readonly contents: ReadonlyMap<number, Buffer>;
}

/** The guest bytes a built data/compressed cluster holds. */
export function clusterContent(fill: number, clusterSize: number): Buffer {
  const b = Buffer.alloc(clusterSize, fill);
  for (let i = 0; i < clusterSize; i += 8) b[i] = (fill ^ (i & 0xff)) & 0xff;
  return b;
}

/** A zstd frame holding `data` in raw blocks, with its content size (valid, trivially decodable). */
export function zstdRawFrame(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(13);
  head.writeUInt32LE(0xfd2fb528, 0);
  head[4] = (3 << 6) | (1 << 5); // 8-byte content size, single segment
  head.writeBigUInt64LE(BigInt(data.length), 5);
  parts.push(head);
  for (let o = 0; o < data.length || o === 0; o += 128 * 1024) {
    const n = Math.min(128 * 1024, data.length - o);
    const last = o + n >= data.length ? 1 : 0;
    const bh = Buffer.alloc(3);
    bh.writeUIntLE((n << 3) | last, 0, 3);
    parts.push(bh, data.subarray(o, o + n));
    if (n === 0) break;
  }
  return Buffer.concat(parts);
}

/** A zstd frame of `blocks` RLE blocks of 128 KiB each: a few bytes that expand enormously. */
export function zstdRleBomb(blocks: number, windowByte = 0x38): Buffer {
  const head = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, windowByte]);
  const body = Buffer.alloc(blocks * 4);
  for (let i = 0; i < blocks; i++) {
    const last = i === blocks - 1 ? 1 : 0;
    body.writeUIntLE(((128 * 1024) << 3) | (1 << 1) | last, i * 4, 3);
    body[i * 4 + 3] = 0x41;
  }
  return Buffer.concat([head, body]);
}

/**
 * Builds a small valid qcow2 image in memory: header in cluster 0, refcount
 * table in cluster 1, one refcount block in cluster 2, the L1 table in
 * cluster 3, then L2 tables, data clusters and packed compressed data.
 */
export function buildQcow2(options: Qcow2BuildOptions = {}): {
  image: Buffer;
  layout: Qcow2Layout;
} {
  const version = options.version ?? 3;
  const cb = options.clusterBits ?? 12;
  const cs = 2 ** cb;
  const ext = options.extendedL2 ?? false;
  const l2Entries = cs / (ext ? 16 : 8);
  const size = options.size ?? (l2Entries + 8) * cs + 512;
  const clusters = options.clusters ?? [
    { index: 0, kind: 'data', fill: 0x11 },
    { index: 1, kind: 'data', fill: 0x22 },
    { index: 3, kind: 'zero' },
    { index: 4, kind: 'compressed', fill: 0x44 },
    { index: 5, kind: 'compressed', fill: 0x55 },
    { index: l2Entries + 2, kind: 'data', fill: 0x66 },
  ];
  const l1Size = Math.ceil(size / (cs * l2Entries));
  const headerLength = version === 3 ? 112 : 72;
  const refcountTableOffset = cs;
  const l1Offset = 3 * cs;
  const l2Index = [...new Set(clusters.map((c) => Math.floor(c.index / l2Entries)))].sort(
    (a, b) => a - b,
  );
  const l2Offsets: number[] = new Array(l1Size).fill(0);
  let next = 4 * cs;
  for (const i of l2Index) {
    l2Offsets[i] = next;
    next += cs;
  }
  const hosts = new Map<number, number>();
  const contents = new Map<number, Buffer>();
  const pieces: { at: number; data: Buffer }[] = [];
  for (const c of clusters) {
    if (c.kind === 'data' || c.kind === 'sub') {
      hosts.set(c.index, next);
      const content = clusterContent(c.fill ?? 0x5a, cs);
      contents.set(c.index, content);
      pieces.push({ at: next, data: content });
      next += cs;
    }
  }
  const entries = new Map<number, { lo: bigint; bitmap: bigint }>();
  for (const c of clusters) {
    if (c.kind === 'compressed') {
      const content = clusterContent(c.fill ?? 0x5a, cs);
      contents.set(c.index, content);
      const payload =
        c.payload ??
        (options.compression === 'zstd' ? zstdRawFrame(content) : deflateRawSync(content));
      hosts.set(c.index, next);
      pieces.push({ at: next, data: payload });
      const x = 62 - (cb - 8);
      const extra = Math.floor((next + payload.length - 1) / 512) - Math.floor(next / 512);
      if (extra >= 2 ** (cb - 8)) throw new Error('compressed payload too large for the cluster');
      entries.set(c.index, {
        lo: (1n << 62n) | (BigInt(extra) << BigInt(x)) | BigInt(next),
        bitmap: 0n,
      });
      next = Math.ceil((next + payload.length) / 512) * 512;
    } else if (c.kind === 'data') {
      entries.set(c.index, {
        lo: (1n << 63n) | BigInt(hosts.get(c.index)!),
        bitmap: ext ? 0xffffffffn : 0n,
      });
    } else if (c.kind === 'zero') {
      entries.set(c.index, ext ? { lo: 0n, bitmap: 0xffffffffn << 32n } : { lo: 1n, bitmap: 0n });
    } else {
      entries.set(c.index, {
        lo: (1n << 63n) | BigInt(hosts.get(c.index)!),
        bitmap: (BigInt(c.zero ?? 0) << 32n) | BigInt(c.alloc ?? 0),
      });
    }
  }
  const fileSize = Math.ceil(next / cs) * cs;
  const img = Buffer.alloc(fileSize);
  // Header.
  img.writeUInt32BE(0x514649fb, 0);
  img.writeUInt32BE(version, 4);
  img.writeUInt32BE(cb, 20);
  img.writeBigUInt64BE(BigInt(size), 24);
  img.writeUInt32BE(l1Size, 36);
  img.writeBigUInt64BE(BigInt(l1Offset), 40);
  img.writeBigUInt64BE(BigInt(refcountTableOffset), 48);
  img.writeUInt32BE(1, 56);
  if (version === 3) {
    let incompat = 0n;
    if (ext) incompat |= 1n << 4n;
    if (options.compression === 'zstd') incompat |= 1n << 3n;
    img.writeBigUInt64BE(incompat, 72);
    img.writeUInt32BE(4, 96);
    img.writeUInt32BE(headerLength, 100);
    img[104] = options.compression === 'zstd' ? 1 : 0;
  }
  // Refcount table and block: metadata and data clusters once, each host
  // cluster a compressed cluster touches once per compressed cluster.
  img.writeBigUInt64BE(BigInt(2 * cs), refcountTableOffset);
  const refs = new Array<number>(fileSize / cs).fill(0);
  for (let i = 0; i < 4 + l2Index.length; i++) refs[i] = 1;
  for (const c of clusters) {
    const host = hosts.get(c.index);
    if (host === undefined) continue;
    if (c.kind !== 'compressed') refs[host / cs]! += 1;
    else {
      const e = entries.get(c.index)!;
      const x = 62 - (cb - 8);
      const extra = Number((e.lo >> BigInt(x)) & BigInt(2 ** (cb - 8) - 1));
      const end = (Math.floor(host / 512) + extra + 1) * 512;
      for (let k = Math.floor(host / cs); k <= Math.floor((end - 1) / cs); k++) refs[k]! += 1;
    }
  }
  refs.forEach((r, k) => {
    if (k < cs / 2) img.writeUInt16BE(r, 2 * cs + k * 2);
  });
  // L1 and L2 tables.
  l2Offsets.forEach((off, i) => {
    if (off !== 0) img.writeBigUInt64BE((1n << 63n) | BigInt(off), l1Offset + i * 8);
  });
  for (const [index, e] of entries) {
    const t = l2Offsets[Math.floor(index / l2Entries)]!;
    const at = t + (index % l2Entries) * (ext ? 16 : 8);
    img.writeBigUInt64BE(e.lo, at);
    if (ext) img.writeBigUInt64BE(e.bitmap, at + 8);
  }
  for (const p of pieces) p.data.copy(img, p.at);
  return {
    image: img,
    layout: {
      clusterSize: cs,
      headerLength,
      refcountTableOffset,
      l1Offset,
      l1Size,
      l2Offsets,
      hosts,
      contents,
    },
  };
}

const base = buildQcow2();
const L = base.layout;
const CS = L.clusterSize;
const firstL2 = L.l2Offsets[0]!;

/** A patched copy of `image`. */
function patched(image: Buffer, fn: (b: Buffer) => void): Buffer {
  const b = Buffer.from(image);
  fn(b);
  return b;
}

/** A patched copy of the default image. */
function bad(fn: (b: Buffer) => void): Buffer {
  return patched(base.image, fn);
}

/** Appends a header extension right after the v3 header. */
function withExtension(type: number, data: Buffer, fn?: (b: Buffer) => void): Buffer {
  return bad((b) => {
    b.writeUInt32BE(type, 112);
    b.writeUInt32BE(data.length, 116);
    data.copy(b, 120);
    fn?.(b);
  });
}

function compressedImage(payload: Buffer, compression: 'deflate' | 'zstd', clusterBits = 12) {
  return buildQcow2({
    clusterBits,
    compression,
    clusters: [
      { index: 0, kind: 'data', fill: 1 },
      { index: 1, kind: 'compressed', fill: 2, payload },
    ],
  }).image;
}

function c(
  name: string,
  image: Buffer,
  expect: MalformedCase['expect'],
  extra: Record<string, Buffer> = {},
): MalformedCase {
  return { name, files: { 'image.qcow2': image, ...extra }, expect };
}

/** Malformed qcow2 images; see test/corpus/types.ts. */
export const qcow2Cases: MalformedCase[] = [
  // Header structure.
  c('truncated header (40 bytes)', base.image.subarray(0, 40), 'FERRY_IMAGE_TRUNCATED'),
  c('truncated version 3 header (90 bytes)', base.image.subarray(0, 90), 'FERRY_IMAGE_TRUNCATED'),
  c(
    'truncated file: L2 tables and data past EOF',
    base.image.subarray(0, firstL2 + 100),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'truncated file: L1 table past EOF',
    base.image.subarray(0, L.l1Offset + 8),
    'FERRY_IMAGE_TRUNCATED',
  ),
  c(
    'version 1',
    bad((b) => b.writeUInt32BE(1, 4)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'version 4',
    bad((b) => b.writeUInt32BE(4, 4)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'cluster_bits 8',
    bad((b) => b.writeUInt32BE(8, 20)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'cluster_bits 22',
    bad((b) => b.writeUInt32BE(22, 20)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'cluster_bits 2^32-1',
    bad((b) => b.writeUInt32BE(0xffffffff, 20)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'header_length 100',
    bad((b) => b.writeUInt32BE(100, 100)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'header_length 108 (not a multiple of 8)',
    bad((b) => b.writeUInt32BE(108, 100)),
    ['FERRY_QCOW2_BAD_HEADER'],
  ),
  c(
    'header_length larger than the cluster',
    bad((b) => b.writeUInt32BE(2 * CS, 100)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'refcount_order 7',
    bad((b) => b.writeUInt32BE(7, 96)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'header extension overrunning cluster 0',
    withExtension(0x12345678, Buffer.alloc(0), (b) => b.writeUInt32BE(CS, 116)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'compression type zstd without its feature bit',
    bad((b) => {
      b[104] = 1;
    }),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'compression type 2',
    bad((b) => {
      b[104] = 2;
      b[79] = b[79]! | 8;
    }),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'extended L2 with 4 KiB clusters',
    bad((b) => {
      b[79] = b[79]! | 16;
    }),
    'FERRY_QCOW2_BAD_HEADER',
  ),

  // Sizes and table bounds.
  c(
    'huge l1_size (2^32-1 entries)',
    bad((b) => b.writeUInt32BE(0xffffffff, 36)),
    'FERRY_IMAGE_LIMIT',
  ),
  c(
    'l1_size smaller than the virtual size needs',
    bad((b) => b.writeUInt32BE(1, 36)),
    'FERRY_QCOW2_BAD_HEADER',
  ),
  c(
    'virtual size 2^62',
    bad((b) => b.writeBigUInt64BE(1n << 62n, 24)),
    'FERRY_IMAGE_TOO_LARGE',
  ),
  c(
    'virtual size 2^64-1',
    bad((b) => b.writeBigUInt64BE(2n ** 64n - 1n, 24)),
    'FERRY_IMAGE_TOO_LARGE',
  ),
  c(
    'virtual size needing an L1 table over 32 MiB',
    bad((b) => b.writeBigUInt64BE(1n << 45n, 24)),
    'FERRY_IMAGE_LIMIT',
  ),
  c(
    'L1 table offset past EOF',
    bad((b) => b.writeBigUInt64BE(1n << 40n, 40)),
    'FERRY_IMAGE_TRUNCATED',
  ),
  c(
    'L1 table offset 2^64-1',
    bad((b) => b.writeBigUInt64BE(2n ** 64n - 1n, 40)),
    ['FERRY_IMAGE_TOO_LARGE', 'FERRY_QCOW2_BAD_TABLE'],
  ),
  c(
    'unaligned L1 table offset',
    bad((b) => b.writeBigUInt64BE(BigInt(L.l1Offset + 512), 40)),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'refcount table over 8 MiB',
    bad((b) => b.writeUInt32BE(0x10000000, 56)),
    'FERRY_IMAGE_LIMIT',
  ),
  c(
    'refcount table past EOF',
    bad((b) => b.writeBigUInt64BE(1n << 40n, 48)),
    'FERRY_IMAGE_TRUNCATED',
  ),
  c(
    '65537 snapshots',
    bad((b) => b.writeUInt32BE(65537, 60)),
    'FERRY_IMAGE_LIMIT',
  ),

  // L1 / L2 entries.
  c(
    'L2 entry past EOF',
    bad((b) => b.writeBigUInt64BE((1n << 63n) | (1n << 40n), firstL2)),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'L2 entry at the 2^56 limit',
    bad((b) => b.writeBigUInt64BE((1n << 63n) | ((1n << 56n) - BigInt(CS)), firstL2)),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'L2 table overlapping the header',
    bad((b) => b.writeBigUInt64BE((1n << 63n) | 512n, L.l1Offset)),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'unaligned L2 table offset',
    bad((b) => b.writeBigUInt64BE((1n << 63n) | BigInt(firstL2 + 512), L.l1Offset)),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'L2 table at the refcount table',
    bad((b) => b.writeBigUInt64BE((1n << 63n) | BigInt(L.refcountTableOffset), L.l1Offset)),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'cyclic tables: the L1 entry points at the L1 table itself',
    bad((b) => b.writeBigUInt64BE((1n << 63n) | BigInt(L.l1Offset), L.l1Offset)),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'L2 table past EOF',
    bad((b) => b.writeBigUInt64BE((1n << 63n) | (1n << 44n), L.l1Offset)),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'L1 entry with reserved bits',
    bad((b) => {
      b[L.l1Offset + 1] = 1;
    }),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'L2 entry with reserved bits',
    bad((b) => {
      b[firstL2 + 7] = b[firstL2 + 7]! | 2;
    }),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'zero flag in a version 2 image (qemu calls it corruption)',
    buildQcow2({ version: 2, clusters: [{ index: 1, kind: 'zero' }] }).image,
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'unaligned data cluster offset',
    bad((b) => {
      b.writeBigUInt64BE(b.readBigUInt64BE(firstL2) + 512n, firstL2);
    }),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'compressed cluster past EOF',
    bad((b) => b.writeBigUInt64BE((1n << 62n) | (1n << 40n), firstL2 + 4 * 8)),
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'extended L2 subcluster both zero and allocated',
    buildQcow2({
      clusterBits: 14,
      extendedL2: true,
      clusters: [{ index: 0, kind: 'sub', alloc: 0x3, zero: 0x2 }],
    }).image,
    'FERRY_QCOW2_BAD_TABLE',
  ),
  c(
    'extended L2 subclusters allocated without a cluster',
    buildQcow2({
      clusterBits: 14,
      extendedL2: true,
      clusters: [{ index: 0, kind: 'zero' }],
    })
      .image.fill(0, 4 * 16384 + 8, 4 * 16384 + 16)
      .fill(1, 4 * 16384 + 15, 4 * 16384 + 16),
    'FERRY_QCOW2_BAD_TABLE',
  ),

  // Features that would open other files, or that ferry cannot read.
  c(
    'backing file naming /etc/passwd',
    bad((b) => {
      b.writeBigUInt64BE(512n, 8);
      b.writeUInt32BE(11, 16);
      b.write('/etc/passwd', 512, 'latin1');
    }),
    'FERRY_QCOW2_BACKING_FILE',
    { passwd: Buffer.from('root:x:0:0::/root:/bin/sh\n') },
  ),
  c(
    'backing file checked before an invalid version and cluster size',
    bad((b) => {
      b.writeBigUInt64BE(512n, 8);
      b.writeUInt32BE(11, 16);
      b.write('passwd', 512, 'latin1');
      b.writeUInt32BE(99, 4);
      b.writeUInt32BE(99, 20);
    }),
    'FERRY_QCOW2_BACKING_FILE',
    { passwd: Buffer.from('root:x:0:0::/root:/bin/sh\n') },
  ),
  c(
    'external data file bit',
    bad((b) => {
      b[79] = b[79]! | 4;
    }),
    'FERRY_QCOW2_DATA_FILE',
  ),
  c(
    "data-file extension naming 'json:{...}' without the bit",
    withExtension(0x44415441, Buffer.from('json:{"driver":"file","filename":"/etc/shadow"}')),
    'FERRY_QCOW2_DATA_FILE',
  ),
  c(
    'data-file bit and extension naming a file',
    withExtension(0x44415441, Buffer.from('disk.raw'), (b) => {
      b[79] = b[79]! | 4;
    }),
    'FERRY_QCOW2_DATA_FILE',
    { 'disk.raw': Buffer.alloc(4096, 0x77) },
  ),
  c(
    'AES encryption (crypt_method 1)',
    bad((b) => b.writeUInt32BE(1, 32)),
    'FERRY_QCOW2_ENCRYPTED',
  ),
  c(
    'LUKS encryption (crypt_method 2)',
    bad((b) => b.writeUInt32BE(2, 32)),
    'FERRY_QCOW2_ENCRYPTED',
  ),
  c(
    'full-disk-encryption header extension without crypt_method',
    withExtension(0x0537be77, Buffer.alloc(16)),
    'FERRY_QCOW2_ENCRYPTED',
  ),
  c(
    'unknown incompatible feature bit 5',
    bad((b) => {
      b[79] = b[79]! | 32;
    }),
    'FERRY_QCOW2_INCOMPATIBLE_FEATURE',
  ),
  c(
    'unknown incompatible feature bit 63',
    bad((b) => {
      b[72] = 0x80;
    }),
    'FERRY_QCOW2_INCOMPATIBLE_FEATURE',
  ),
  c(
    'corrupt bit',
    bad((b) => {
      b[79] = b[79]! | 2;
    }),
    'FERRY_IMAGE_CORRUPT',
  ),

  // Compressed clusters.
  c(
    'compressed cluster inflating to half a cluster',
    compressedImage(deflateRawSync(Buffer.alloc(CS / 2, 3)), 'deflate'),
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
  ),
  c(
    'compressed cluster holding garbage',
    compressedImage(Buffer.alloc(600, 0xff), 'deflate'),
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
  ),
  c(
    'compressed cluster with a zlib header (not raw deflate)',
    compressedImage(
      Buffer.concat([Buffer.from([0x78, 0x9c]), deflateRawSync(Buffer.alloc(CS, 3))]),
      'deflate',
    ),
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
  ),
  c(
    'deflate bomb: 4 MiB of zeros in one 4 KiB cluster',
    compressedImage(deflateRawSync(Buffer.alloc(4 * 1024 * 1024)), 'deflate'),
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
  ),
  c(
    'zstd bomb: RLE blocks expanding to 25 MiB',
    compressedImage(zstdRleBomb(200), 'zstd', 16),
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
  ),
  c(
    'zstd frame asking for a 2 GiB window',
    compressedImage(zstdRleBomb(1, 0xa8), 'zstd'),
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
  ),
  c(
    'zstd frame declaring 1 GiB of content',
    compressedImage(
      patched(zstdRawFrame(Buffer.alloc(CS, 1)), (f) => f.writeBigUInt64LE(1n << 30n, 5)),
      'zstd',
    ),
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
  ),
  c(
    'zstd frame with half a cluster',
    compressedImage(zstdRawFrame(Buffer.alloc(CS / 2, 1)), 'zstd'),
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
  ),
  c(
    'zstd cluster holding garbage',
    compressedImage(Buffer.alloc(600, 0x28), 'zstd'),
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
  ),
];
