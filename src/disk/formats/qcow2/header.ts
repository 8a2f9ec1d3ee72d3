import { type ErrorCode, FerryError } from '../../../errors/index.js';
import { toSafe } from '../../binary.js';
import type { ByteSource } from '../../byte-source.js';
import { LIMITS } from '../../limits.js';
import {
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION_DEFLATE,
  COMPRESSION_ZSTD,
  EXT_BACKING_FORMAT,
  EXT_BITMAPS,
  EXT_CRYPTO_HEADER,
  EXT_DATA_FILE,
  EXT_END,
  EXT_FEATURE_TABLE,
  INCOMPAT_COMPRESSION,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  INCOMPAT_EXTENDED_L2,
  INCOMPAT_KNOWN,
  MAX_CLUSTER_BITS,
  MAX_REFCOUNT_ORDER,
  MIN_CLUSTER_BITS,
  MIN_EXTENDED_L2_CLUSTER_BITS,
  QCOW2_MAGIC,
  V2_HEADER_LENGTH,
  V3_MIN_HEADER_LENGTH,
} from './constants.js';

/** A validated qcow2 header: every offset and size here has been bounds-checked. */
export interface Qcow2Header {
  readonly version: 2 | 3;
  readonly clusterBits: number;
  readonly clusterSize: number;
  /** Virtual disk size in bytes. */
  readonly size: number;
  readonly l1Size: number;
  readonly l1TableOffset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
  readonly nbSnapshots: number;
  readonly snapshotsOffset: number;
  readonly refcountOrder: number;
  readonly headerLength: number;
  readonly compressionType: 'deflate' | 'zstd';
  readonly extendedL2: boolean;
  readonly dirty: boolean;
  readonly lazyRefcounts: boolean;
  /** L2 entries per table (cluster/8, or cluster/16 with extended L2). */
  readonly l2Entries: number;
  /** L1 entries the virtual size needs (the L1 table may be longer). */
  readonly l1Needed: number;
  /** Known header extensions present, by name. */
  readonly extensions: readonly string[];
}

function fail(
  code: ErrorCode,
  source: ByteSource,
  reason: string,
  details: Record<string, string | number | boolean | null> = {},
): never {
  throw new FerryError(code, `Cannot open qcow2 image ${source.name}: ${reason}`, {
    details: { ...details },
  });
}

/** Reads a 64-bit offset/size field as a safe integer (FERRY_IMAGE_TOO_LARGE beyond 2^53). */
function u64(buf: Buffer, at: number, what: string): number {
  return toSafe(buf.readBigUInt64BE(at), `qcow2 ${what}`);
}

function checkAligned(source: ByteSource, value: number, clusterSize: number, what: string): void {
  if (value % clusterSize !== 0) {
    fail('FERRY_QCOW2_BAD_TABLE', source, `the ${what} offset is not cluster aligned`, {
      offset: value,
      clusterSize,
    });
  }
}

function checkInFile(source: ByteSource, offset: number, length: number, what: string): void {
  if (offset + length > source.size) {
    fail('FERRY_IMAGE_TRUNCATED', source, `the ${what} lies past the end of the file`, {
      offset,
      length,
      fileSize: source.size,
    });
  }
}

/**
 * Reads and validates the header the way qemu's qcow2_do_open does, refusing
 * every feature that would make ferry open another file (backing file,
 * external data file) or that it cannot read (encryption, unknown bits).
 */
export async function readHeader(source: ByteSource, signal?: AbortSignal): Promise<Qcow2Header> {
  const head = await source.read(0, Math.min(source.size, V3_MIN_HEADER_LENGTH + 8), signal);
  if (head.length < 4 || head.readUInt32BE(0) !== QCOW2_MAGIC) {
    fail('FERRY_QCOW2_BAD_HEADER', source, 'the magic is not QFI\\xfb');
  }
  if (head.length < 16) {
    fail('FERRY_IMAGE_TRUNCATED', source, 'the header is truncated', { fileSize: source.size });
  }
  // First of all: a backing file is never opened, and its name is never read.
  if (head.readBigUInt64BE(8) !== 0n) {
    fail('FERRY_QCOW2_BACKING_FILE', source, 'it names a backing file', {
      backingFileOffset: head.readBigUInt64BE(8).toString(),
    });
  }
  if (head.length < V2_HEADER_LENGTH) {
    fail('FERRY_IMAGE_TRUNCATED', source, 'the header is truncated', { fileSize: source.size });
  }
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    fail('FERRY_QCOW2_BAD_HEADER', source, `version ${version} is not 2 or 3`, { version });
  }
  if (version === 3 && head.length < V3_MIN_HEADER_LENGTH) {
    fail('FERRY_IMAGE_TRUNCATED', source, 'the version 3 header is truncated', {
      fileSize: source.size,
    });
  }
  const clusterBits = head.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    fail('FERRY_QCOW2_BAD_HEADER', source, `cluster_bits ${clusterBits} is outside 9..21`, {
      clusterBits,
    });
  }
  const clusterSize = 2 ** clusterBits;

  const incompatible = version === 3 ? head.readBigUInt64BE(72) : 0n;
  const compatible = version === 3 ? head.readBigUInt64BE(80) : 0n;
  const refcountOrder = version === 3 ? head.readUInt32BE(96) : 4;
  const headerLength = version === 3 ? head.readUInt32BE(100) : V2_HEADER_LENGTH;
  if (version === 3) {
    if (headerLength < V3_MIN_HEADER_LENGTH || headerLength % 8 !== 0) {
      fail(
        'FERRY_QCOW2_BAD_HEADER',
        source,
        `header_length ${headerLength} is below 104 or not a multiple of 8`,
        { headerLength },
      );
    }
    if (headerLength > clusterSize) {
      fail('FERRY_QCOW2_BAD_HEADER', source, 'header_length exceeds the cluster size', {
        headerLength,
        clusterSize,
      });
    }
  }
  if ((incompatible & INCOMPAT_DATA_FILE) !== 0n) {
    fail('FERRY_QCOW2_DATA_FILE', source, 'it stores its data in an external data file');
  }
  const cryptMethod = head.readUInt32BE(32);
  if (cryptMethod !== 0) {
    fail('FERRY_QCOW2_ENCRYPTED', source, `it is encrypted (crypt_method ${cryptMethod})`, {
      cryptMethod,
    });
  }

  // Header extensions: (type, length, data padded to 8) up to the end of cluster 0.
  const extEnd = Math.min(clusterSize, source.size);
  const area = extEnd > headerLength ? await source.read(0, extEnd, signal) : Buffer.alloc(0);
  const extensions: string[] = [];
  const featureNames = new Map<number, string>();
  let hasCryptoHeader = false;
  for (let off = headerLength; off + 8 <= area.length; ) {
    const type = area.readUInt32BE(off);
    const len = area.readUInt32BE(off + 4);
    off += 8;
    if (type === EXT_END) break;
    if (len > area.length - off) {
      fail('FERRY_QCOW2_BAD_HEADER', source, 'a header extension overruns cluster 0', {
        type,
        length: len,
      });
    }
    if (type === EXT_DATA_FILE) {
      fail('FERRY_QCOW2_DATA_FILE', source, 'it names an external data file');
    } else if (type === EXT_CRYPTO_HEADER) {
      hasCryptoHeader = true;
    } else if (type === EXT_BACKING_FORMAT) {
      extensions.push('backing-format');
    } else if (type === EXT_BITMAPS) {
      extensions.push('bitmaps');
    } else if (type === EXT_FEATURE_TABLE) {
      extensions.push('feature-names');
      for (let e = off; e + 48 <= off + len; e += 48) {
        if (area[e] !== 0) continue; // only incompatible feature names are of use
        const raw = area.subarray(e + 2, e + 48);
        const nul = raw.indexOf(0);
        const name = raw.subarray(0, nul < 0 ? raw.length : nul).toString('latin1');
        featureNames.set(area[e + 1]!, name.replace(/[^\x20-\x7e]/g, '?'));
      }
    }
    off += Math.ceil(len / 8) * 8;
  }
  if (hasCryptoHeader) {
    fail('FERRY_QCOW2_ENCRYPTED', source, 'it carries a full-disk-encryption header');
  }

  const unknown = incompatible & ~INCOMPAT_KNOWN;
  if (unknown !== 0n) {
    const bits: string[] = [];
    for (let b = 5; b < 64; b++) {
      if ((unknown >> BigInt(b)) & 1n) bits.push(featureNames.get(b) ?? `bit ${b}`);
    }
    fail(
      'FERRY_QCOW2_INCOMPATIBLE_FEATURE',
      source,
      `it uses unknown incompatible features (${bits.join(', ')})`,
      { incompatibleFeatures: `0x${incompatible.toString(16)}` },
    );
  }
  if ((incompatible & INCOMPAT_CORRUPT) !== 0n) {
    throw new FerryError(
      'FERRY_IMAGE_CORRUPT',
      `Cannot open qcow2 image ${source.name}: it is marked corrupt`,
      { hint: 'Repair it with qemu-img check -r all on a copy first' },
    );
  }

  const rawCompression = version === 3 && headerLength > V3_MIN_HEADER_LENGTH ? head[104]! : 0;
  if (rawCompression !== COMPRESSION_DEFLATE && rawCompression !== COMPRESSION_ZSTD) {
    fail('FERRY_QCOW2_BAD_HEADER', source, `unknown compression type ${rawCompression}`, {
      compressionType: rawCompression,
    });
  }
  if ((rawCompression !== COMPRESSION_DEFLATE) !== ((incompatible & INCOMPAT_COMPRESSION) !== 0n)) {
    fail(
      'FERRY_QCOW2_BAD_HEADER',
      source,
      'the compression type and its incompatible feature bit disagree',
      { compressionType: rawCompression },
    );
  }
  if (refcountOrder > MAX_REFCOUNT_ORDER) {
    fail('FERRY_QCOW2_BAD_HEADER', source, `refcount_order ${refcountOrder} exceeds 6`, {
      refcountOrder,
    });
  }
  const extendedL2 = (incompatible & INCOMPAT_EXTENDED_L2) !== 0n;
  if (extendedL2 && clusterBits < MIN_EXTENDED_L2_CLUSTER_BITS) {
    fail('FERRY_QCOW2_BAD_HEADER', source, 'extended L2 entries need clusters of 16 KiB or more', {
      clusterBits,
    });
  }

  const size = u64(head, 24, 'virtual size');
  if (size > LIMITS.maxVirtualSize) {
    fail('FERRY_IMAGE_TOO_LARGE', source, `the virtual size ${size} exceeds 64 TiB`, { size });
  }
  const l2Entries = clusterSize / (extendedL2 ? 16 : 8);
  const l1Needed = Math.ceil(size / (clusterSize * l2Entries));
  if (l1Needed * 8 > LIMITS.maxQcow2L1Bytes) {
    fail('FERRY_IMAGE_LIMIT', source, 'the virtual size needs an L1 table over 32 MiB', {
      size,
      clusterSize,
    });
  }
  const l1Size = head.readUInt32BE(36);
  if (l1Size * 8 > LIMITS.maxQcow2L1Bytes) {
    fail('FERRY_IMAGE_LIMIT', source, `the L1 table (${l1Size} entries) exceeds 32 MiB`, {
      l1Size,
    });
  }
  if (l1Size < l1Needed) {
    fail('FERRY_QCOW2_BAD_HEADER', source, 'the L1 table is too small for the virtual size', {
      l1Size,
      l1Needed,
    });
  }
  const l1TableOffset = u64(head, 40, 'L1 table offset');
  checkAligned(source, l1TableOffset, clusterSize, 'L1 table');
  if (l1Size > 0) {
    if (l1TableOffset === 0) {
      fail('FERRY_QCOW2_BAD_TABLE', source, 'the L1 table overlaps the header', { l1Size });
    }
    checkInFile(source, l1TableOffset, l1Size * 8, 'L1 table');
  }

  const refcountTableOffset = u64(head, 48, 'refcount table offset');
  const refcountTableClusters = head.readUInt32BE(56);
  checkAligned(source, refcountTableOffset, clusterSize, 'refcount table');
  if (refcountTableClusters * clusterSize > LIMITS.maxQcow2RefcountTableBytes) {
    fail('FERRY_IMAGE_LIMIT', source, 'the refcount table exceeds 8 MiB', {
      refcountTableClusters,
    });
  }
  checkInFile(source, refcountTableOffset, refcountTableClusters * clusterSize, 'refcount table');

  const nbSnapshots = head.readUInt32BE(60);
  const snapshotsOffset = u64(head, 64, 'snapshot table offset');
  if (nbSnapshots > LIMITS.maxQcow2Snapshots) {
    fail('FERRY_IMAGE_LIMIT', source, `${nbSnapshots} snapshots exceed the cap of 65536`, {
      nbSnapshots,
    });
  }
  checkAligned(source, snapshotsOffset, clusterSize, 'snapshot table');
  if (nbSnapshots > 0) checkInFile(source, snapshotsOffset, 40, 'snapshot table');

  return {
    version: version as 2 | 3,
    clusterBits,
    clusterSize,
    size,
    l1Size,
    l1TableOffset,
    refcountTableOffset,
    refcountTableClusters,
    nbSnapshots,
    snapshotsOffset,
    refcountOrder,
    headerLength,
    compressionType: rawCompression === COMPRESSION_ZSTD ? 'zstd' : 'deflate',
    extendedL2,
    dirty: (incompatible & INCOMPAT_DIRTY) !== 0n,
    lazyRefcounts: (compatible & COMPAT_LAZY_REFCOUNTS) !== 0n,
    l2Entries,
    l1Needed,
    extensions,
  };
}
