import { promisify } from 'node:util';
import { constants, inflateRaw } from 'node:zlib';
import { Decompress } from 'fzstd';
import { FerryError } from '../../../errors/index.js';

const inflateRawAsync = promisify(inflateRaw);

function badCluster(name: string, reason: string, cause?: unknown): FerryError {
  return new FerryError(
    'FERRY_QCOW2_BAD_COMPRESSED_CLUSTER',
    `Cannot read qcow2 image ${name}: a compressed cluster ${reason}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Inflates one raw-deflate compressed cluster (no zlib header, as qemu
 * writes it). The stored data is rounded up to 512-byte sectors, so it may
 * end with bytes of the next cluster; inflation stops at the end of the
 * deflate stream. The output is capped at one cluster (a decompression bomb
 * fails early) and must be exactly one cluster.
 */
export async function inflateCluster(
  data: Buffer,
  clusterSize: number,
  name: string,
): Promise<Buffer> {
  let out: Buffer;
  try {
    out = await inflateRawAsync(data, {
      maxOutputLength: clusterSize,
      finishFlush: constants.Z_SYNC_FLUSH,
    });
  } catch (error) {
    throw badCluster(name, 'does not inflate to one cluster', error);
  }
  if (out.length !== clusterSize) {
    throw badCluster(name, `inflates to ${out.length} bytes instead of ${clusterSize}`);
  }
  return out;
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_MAX_BLOCK = 128 * 1024;

/**
 * Finds where the zstd frame at `pos` ends by walking its header and block
 * headers, refusing what could make the decoder allocate much: a window
 * over `windowCap`, a declared content size over the cluster, dictionaries.
 */
function zstdFrameEnd(
  data: Buffer,
  pos: number,
  clusterSize: number,
  windowCap: number,
  name: string,
): number {
  let p = pos + 4;
  if (p + 1 > data.length) throw badCluster(name, 'has a truncated zstd frame header');
  const fhd = data[p++]!;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const hasChecksum = (fhd >> 2) & 1;
  const dictFlag = fhd & 3;
  if ((fhd & 8) !== 0) throw badCluster(name, 'has a reserved zstd frame bit set');
  if (dictFlag !== 0) throw badCluster(name, 'needs a zstd dictionary');
  let window = 0;
  if (singleSegment === 0) {
    if (p + 1 > data.length) throw badCluster(name, 'has a truncated zstd frame header');
    const wd = data[p++]!;
    const base = 2 ** (10 + (wd >> 3));
    window = base + (base / 8) * (wd & 7);
  }
  const fcsBytes = fcsFlag === 0 ? singleSegment : 2 ** fcsFlag;
  if (p + fcsBytes > data.length) throw badCluster(name, 'has a truncated zstd frame header');
  let contentSize = -1;
  if (fcsBytes === 1) contentSize = data[p]!;
  else if (fcsBytes === 2) contentSize = data.readUInt16LE(p) + 256;
  else if (fcsBytes === 4) contentSize = data.readUInt32LE(p);
  else if (fcsBytes === 8) {
    const v = data.readBigUInt64LE(p);
    contentSize = v > BigInt(clusterSize) ? clusterSize + 1 : Number(v);
  }
  p += fcsBytes;
  if (singleSegment === 1) window = contentSize;
  if (contentSize > clusterSize) {
    throw badCluster(name, `declares ${contentSize} bytes of content, over one cluster`);
  }
  if (window > windowCap) throw badCluster(name, `asks for a ${window}-byte zstd window`);
  for (;;) {
    if (p + 3 > data.length) throw badCluster(name, 'has a truncated zstd block');
    const b = data[p]! | (data[p + 1]! << 8) | (data[p + 2]! << 16);
    const last = b & 1;
    const type = (b >> 1) & 3;
    const size = b >>> 3;
    if (type === 3) throw badCluster(name, 'has a reserved zstd block type');
    if (size > ZSTD_MAX_BLOCK) throw badCluster(name, 'has an oversized zstd block');
    p += 3 + (type === 1 ? 1 : size);
    if (p > data.length) throw badCluster(name, 'has a truncated zstd block');
    if (last === 1) break;
  }
  if (hasChecksum === 1) p += 4;
  if (p > data.length) throw badCluster(name, 'has a truncated zstd checksum');
  return p;
}

/**
 * Decompresses one zstd compressed cluster: one or more frames (skippable
 * frames allowed) until exactly one cluster is produced; bytes after that
 * (the rest of the last sector) are ignored, as qemu does. Output past one
 * cluster fails at once.
 */
export function zstdCluster(data: Buffer, clusterSize: number, name: string): Buffer {
  const out = Buffer.alloc(clusterSize);
  const windowCap = Math.max(2 * clusterSize, 8 * 1024 * 1024);
  let produced = 0;
  let pos = 0;
  // Each pass consumes at least 8 bytes of input, so the loop is bounded.
  while (produced < clusterSize) {
    if (pos + 8 > data.length) {
      throw badCluster(name, `decompresses to ${produced} bytes instead of ${clusterSize}`);
    }
    const magic = data.readUInt32LE(pos);
    if (magic >>> 4 === 0x184d2a5) {
      pos += 8 + data.readUInt32LE(pos + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw badCluster(name, 'is not a zstd frame');
    const end = zstdFrameEnd(data, pos, clusterSize, windowCap, name);
    const frame = data.subarray(pos, end);
    pos = end;
    const decoder = new Decompress((chunk) => {
      if (chunk.length > clusterSize - produced) {
        throw badCluster(name, 'decompresses to more than one cluster');
      }
      out.set(chunk, produced);
      produced += chunk.length;
    });
    try {
      decoder.push(frame, true);
    } catch (error) {
      if (error instanceof FerryError) throw error;
      throw badCluster(name, 'is not valid zstd data', error);
    }
  }
  return out;
}
