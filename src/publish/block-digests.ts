import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { FerryError } from '../errors/index.js';
import { writeFileAtomic } from '../store/local-store.js';
import { workerPool } from '../util/ordered-pool.js';
import { contentHashOf, ZERO_BLOCK_SHA256 } from './digest-table.js';
import { BLOCK_SIZE, type BlockInfo, type BlockSource } from './types.js';

/**
 * What a snapshot made from a source holds, block by block: index to base64
 * SHA-256 for every block that is not a hole (a zero block or zero data maps
 * to ZERO_BLOCK_SHA256). An absent index is a hole. This is what an
 * incremental child is compared with, and what verify reads back against.
 */
export type BlockDigests = ReadonlyMap<number, string>;

/** A saved digests file: the block count and content hash it belongs to, and the digests. */
export interface DigestsFile {
  readonly blockCount: number;
  readonly contentHash: string;
  readonly digests: BlockDigests;
}

/**
 * Every non-hole block's digest. Blocks whose digest the source does not
 * know are read (`readAhead` at once) and hashed.
 */
export async function blockDigests(
  source: BlockSource,
  options: { readonly signal?: AbortSignal; readonly readAhead?: number } = {},
): Promise<Map<number, string>> {
  const { signal } = options;
  const out = new Map<number, string>();
  // Only blocks whose digest the source does not know go to the readers.
  async function* unknown(): AsyncIterable<BlockInfo> {
    for await (const b of source.blocks(signal)) {
      if (b.kind === 'hole') continue;
      if (b.kind === 'zero') out.set(b.index, ZERO_BLOCK_SHA256);
      else if (b.sha256 !== undefined) out.set(b.index, b.sha256);
      else yield b;
    }
  }
  const free: Buffer[] = [];
  await workerPool(unknown(), Math.max(1, options.readAhead ?? 4), async (b) => {
    const buf = free.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE);
    try {
      await source.readBlock(b.index, buf, signal);
      out.set(b.index, createHash('sha256').update(buf).digest('base64'));
    } finally {
      free.push(buf);
    }
  });
  return out;
}

const FORMAT = 'ferry-block-digests';
/** 64 TiB of 512 KiB blocks: EBS's largest volume. */
const MAX_BLOCKS = 65536 * 2048;
/** Entries read at most (16 Mi blocks: 8 TiB of non-hole blocks), so a hostile file cannot exhaust memory. */
const MAX_ENTRIES = 16 * 1024 * 1024;
/** About 60 bytes a data block: a 2 TiB image full of data is ~250 MiB. */
const MAX_FILE_BYTES = 512 * 1024 * 1024;
const B64_SHA256 = /^[A-Za-z0-9+/]{43}=$/;
const HEX64 = /^[0-9a-f]{64}$/;

interface DigestsJson {
  readonly format: typeof FORMAT;
  readonly version: 1;
  readonly blockSize: number;
  readonly blockCount: number;
  readonly contentHash: string;
  /** Runs [start, count] of blocks that hold zeros (not holes). */
  readonly zero: ReadonlyArray<readonly [number, number]>;
  /** Block index (decimal) to base64 SHA-256, for blocks holding data. */
  readonly sha256: Readonly<Record<string, string>>;
}

/** Saves `file.digests` atomically as JSON (zero blocks as runs). */
export async function writeDigests(path: string, file: DigestsFile): Promise<void> {
  const zero: Array<[number, number]> = [];
  const sha256: Record<string, string> = {};
  for (const [i, d] of [...file.digests].sort((a, b) => a[0] - b[0])) {
    if (d === ZERO_BLOCK_SHA256) {
      const last = zero[zero.length - 1];
      if (last !== undefined && last[0] + last[1] === i) last[1]++;
      else zero.push([i, 1]);
    } else sha256[String(i)] = d;
  }
  const json: DigestsJson = {
    format: FORMAT,
    version: 1,
    blockSize: BLOCK_SIZE,
    blockCount: file.blockCount,
    contentHash: file.contentHash,
    zero,
    sha256,
  };
  await writeFileAtomic(path, `${JSON.stringify(json)}\n`);
}

function bad(path: string, reason: string, cause?: unknown): FerryError {
  return new FerryError(
    'FERRY_PUBLISH_DIGESTS_INVALID',
    `Cannot read the block digests ${path}: ${reason}`,
    {
      ...(cause === undefined ? {} : { cause }),
      hint: 'Delete the file: the next publish sends every block instead of only the changed ones',
    },
  );
}

const isCount = (v: unknown, max: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;

/**
 * Reads a digests file written by writeDigests, checking every field (it
 * is input from disk) and that the digests still hash to the content hash.
 */
export async function readDigests(path: string): Promise<DigestsFile> {
  const size = await stat(path).then(
    (s) => s.size,
    (error: unknown) => {
      throw bad(path, 'it cannot be read', error);
    },
  );
  if (size > MAX_FILE_BYTES) throw bad(path, `it is ${size} bytes, over ${MAX_FILE_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw bad(path, 'it is not JSON', error);
  }
  const j = raw as Partial<DigestsJson> | null;
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw bad(path, 'not an object');
  if (j.format !== FORMAT || j.version !== 1) throw bad(path, `not a ${FORMAT} version 1 file`);
  if (j.blockSize !== BLOCK_SIZE) throw bad(path, `its blocks are not ${BLOCK_SIZE} bytes`);
  const { blockCount } = j;
  if (!isCount(blockCount, MAX_BLOCKS)) throw bad(path, 'its blockCount is out of range');
  if (typeof j.contentHash !== 'string' || !HEX64.test(j.contentHash))
    throw bad(path, 'its contentHash is not a hex SHA-256');
  if (!Array.isArray(j.zero)) throw bad(path, 'its zero runs are not a list');
  if (j.sha256 === null || typeof j.sha256 !== 'object' || Array.isArray(j.sha256))
    throw bad(path, 'its sha256 member is not an object');
  const digests = new Map<number, string>();
  for (const [k, v] of Object.entries(j.sha256)) {
    const i = Number(k);
    if (!/^\d{1,10}$/.test(k) || i >= blockCount)
      throw bad(path, `block ${k.slice(0, 20)} is out of range`);
    if (typeof v !== 'string' || !B64_SHA256.test(v) || v === ZERO_BLOCK_SHA256)
      throw bad(path, `block ${k} has a malformed digest`);
    digests.set(i, v);
  }
  for (const run of j.zero as unknown[]) {
    if (!Array.isArray(run) || run.length !== 2)
      throw bad(path, 'a zero run is not [start, count]');
    const [start, count] = run as unknown[];
    if (!isCount(start, blockCount) || !isCount(count, blockCount) || start + count > blockCount)
      throw bad(path, 'a zero run is out of range');
    if (digests.size + count > MAX_ENTRIES)
      throw bad(path, `it lists more than ${MAX_ENTRIES} blocks`);
    for (let i = start; i < start + count; i++) {
      if (digests.has(i)) throw bad(path, `block ${i} is listed twice`);
      digests.set(i, ZERO_BLOCK_SHA256);
    }
  }
  if (contentHashOf(blockCount, digests) !== j.contentHash)
    throw bad(path, 'its digests do not hash to its content hash');
  return { blockCount, contentHash: j.contentHash, digests };
}
