import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { type DiskImage, type ExtentKind, openImage } from '../disk/index.js';
import { isZero } from '../disk/zero.js';
import { FerryError } from '../errors/index.js';
import { checkChunks } from '../render/chunk-digest.js';
import { orderedPool } from '../util/ordered-pool.js';
import { DigestTable, ZERO_BLOCK_SHA256 } from './digest-table.js';
import { BLOCK_SIZE, type BlockInfo, type BlockSource } from './types.js';

export { ZERO_BLOCK_SHA256 } from './digest-table.js';

export interface OpenBlockSourceOptions {
  /** A render's FILE.ferry-map.json: its chunk digests stand in for a read pass. */
  readonly map?: string;
  /** Reads in flight during the hashing pass (default 4); memory is this many blocks. */
  readonly readAhead?: number;
  /**
   * Large aligned reads bypass the page cache (default false): for a render,
   * which ferry wrote past the cache, so the cache has nothing to give and
   * a buffered read would only cost the CPU its copy. A user's image may
   * well be cached; it is read buffered.
   */
  readonly directReads?: boolean;
  readonly signal?: AbortSignal;
}

/** Largest render map read (load-base.ts has the same cap). */
const MAX_MAP_BYTES = 256 * 1024 * 1024;
const DEFAULT_READ_AHEAD = 4;

/** A run of blocks of one kind: [start, end). */
interface Run {
  readonly start: number;
  readonly end: number;
  readonly kind: ExtentKind;
}

const RANK: Readonly<Record<ExtentKind, number>> = { hole: 0, zero: 1, data: 2 };

/**
 * The allocation map at block granularity: a block is `hole` when no byte
 * of it is data or zero, `zero` when none is data, else `data`. Adjacent
 * blocks of one kind are merged, so a sparse image costs a few runs.
 */
async function blockRuns(image: DiskImage, blockCount: number, signal?: AbortSignal) {
  const runs: Run[] = [];
  const push = (start: number, end: number, kind: ExtentKind): void => {
    if (end <= start) return;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.kind === kind && last.end === start) {
      runs[runs.length - 1] = { start: last.start, end, kind };
    } else runs.push({ start, end, kind });
  };
  // The block being assembled from extents that end inside it, and its kind so far.
  let open = 0;
  let openKind: ExtentKind = 'hole';
  for await (const e of image.extents(signal)) {
    if (e.length <= 0) continue;
    const first = Math.floor(e.offset / BLOCK_SIZE);
    const last = Math.floor((e.offset + e.length - 1) / BLOCK_SIZE);
    if (first !== open) {
      throw new FerryError('FERRY_INTERNAL', 'Cannot map blocks: the extents are not contiguous', {
        details: { block: open, extentBlock: first },
      });
    }
    if (RANK[e.kind] > RANK[openKind]) openKind = e.kind;
    if (last > first) {
      push(first, first + 1, openKind);
      push(first + 1, last, e.kind);
      open = last;
      openKind = e.kind;
    }
    // The extent ends on a block boundary: that block is complete.
    if ((e.offset + e.length) % BLOCK_SIZE === 0) {
      push(open, open + 1, openKind);
      open++;
      openKind = 'hole';
    }
  }
  if (open < blockCount) push(open, open + 1, openKind);
  return runs;
}

function mapError(path: string, reason: string, cause?: unknown): FerryError {
  return new FerryError(
    'FERRY_PUBLISH_MAP_INVALID',
    `Cannot use the block map ${path}: ${reason}`,
    {
      ...(cause === undefined ? {} : { cause }),
      hint: "Pass the .ferry-map.json ferry's render wrote beside this image, or no map",
    },
  );
}

async function readMapChunks(path: string, bytes: number): Promise<Map<number, string>> {
  const size = await stat(path).then(
    (s) => s.size,
    (error: unknown) => {
      throw mapError(path, 'it cannot be read', error);
    },
  );
  if (size > MAX_MAP_BYTES) throw mapError(path, `it is ${size} bytes, over ${MAX_MAP_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw mapError(path, 'it is not JSON', error);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw mapError(path, 'it is not a JSON object');
  const chunks = checkChunks((raw as { chunkDigests?: unknown }).chunkDigests, bytes, (reason) =>
    mapError(path, reason),
  );
  if (chunks === undefined) throw mapError(path, 'it has no chunk digests (an older render)');
  return chunks;
}

/** A BlockSource over a DiskImage, with every block's digest known (from a map or one read pass). */
class ImageBlockSource implements BlockSource {
  readonly size: number;
  readonly blockCount: number;
  readonly contentHash: string;
  readonly #image: DiskImage;
  readonly #runs: readonly Run[];
  readonly #digests: DigestTable;

  constructor(image: DiskImage, runs: readonly Run[], digests: DigestTable) {
    this.#image = image;
    this.size = image.virtualSize;
    this.blockCount = Math.ceil(image.virtualSize / BLOCK_SIZE);
    this.#runs = runs;
    this.#digests = digests;
    this.contentHash = digests.contentHash(this.blockCount);
  }

  async *blocks(signal?: AbortSignal): AsyncIterable<BlockInfo> {
    for (const run of this.#runs) {
      signal?.throwIfAborted();
      for (let index = run.start; index < run.end; index++) {
        if (run.kind === 'hole') yield { index, kind: 'hole' };
        else if (run.kind === 'zero') yield { index, kind: 'zero', sha256: ZERO_BLOCK_SHA256 };
        else yield { index, kind: 'data', sha256: this.#digests.get(index) ?? ZERO_BLOCK_SHA256 };
      }
    }
  }

  readBlock(index: number, into: Buffer, signal?: AbortSignal): Promise<void> {
    return readImageBlock(this.#image, index, into, signal);
  }

  close(): Promise<void> {
    return this.#image.close();
  }
}

/** Reads block `index` of `image` into `into` (zero-padded past the end of the disk). */
async function readImageBlock(
  image: DiskImage,
  index: number,
  into: Buffer,
  signal?: AbortSignal,
): Promise<void> {
  const blockCount = Math.ceil(image.virtualSize / BLOCK_SIZE);
  if (!Number.isSafeInteger(index) || index < 0 || index >= blockCount) {
    throw new FerryError(
      'FERRY_READ_OUT_OF_RANGE',
      `Cannot read block ${index}: the image has ${blockCount} blocks`,
      { details: { index, blockCount } },
    );
  }
  if (into.length < BLOCK_SIZE) {
    throw new FerryError('FERRY_INTERNAL', 'Cannot read a block: the buffer is too small', {
      details: { length: into.length },
    });
  }
  const offset = index * BLOCK_SIZE;
  const length = Math.min(BLOCK_SIZE, image.virtualSize - offset);
  if (image.readInto !== undefined) await image.readInto(into.subarray(0, length), offset, signal);
  else (await image.read(offset, length, signal)).copy(into, 0);
  if (length < BLOCK_SIZE) into.fill(0, length, BLOCK_SIZE);
}

/** The SHA-256 of a block, or undefined when it is all zeros. */
function digestOf(block: Buffer): Buffer | undefined {
  return isZero(block) ? undefined : createHash('sha256').update(block).digest();
}

/**
 * Opens any disk image ferry reads as EBS blocks. With a render's map the
 * blocks carry the map's digests and its all-zero chunks are `zero`, and
 * the content hash is computed without reading; without one, every data
 * block is read once (a few reads in flight) and hashed. Memory: one digest
 * per block holding data (36 bytes each).
 */
export async function openBlockSource(
  path: string,
  options: OpenBlockSourceOptions = {},
): Promise<BlockSource> {
  const { signal } = options;
  const image = await openImage(path, {
    ...(options.directReads === true ? { directReads: true } : {}),
    ...(signal === undefined ? {} : { signal }),
  });
  try {
    const blockCount = Math.ceil(image.virtualSize / BLOCK_SIZE);
    let runs = await blockRuns(image, blockCount, signal);
    const table = new DigestTable();
    const readAhead = Math.max(1, options.readAhead ?? DEFAULT_READ_AHEAD);
    if (options.map !== undefined) {
      const chunks = await readMapChunks(options.map, image.virtualSize);
      runs = applyMap(options.map, runs, chunks);
      const partial = image.virtualSize % BLOCK_SIZE === 0 ? -1 : blockCount - 1;
      const buf = Buffer.allocUnsafe(BLOCK_SIZE);
      for (const [index, digest] of [...chunks].sort((a, b) => a[0] - b[0])) {
        if (index === partial) {
          // A render digests a short last chunk as it is; EBS hashes it zero-padded.
          await readImageBlock(image, index, buf, signal);
          const d = digestOf(buf);
          if (d !== undefined) table.append(index, d);
        } else table.append(index, Buffer.from(digest, 'base64'));
      }
    } else {
      const free: Buffer[] = [];
      const hashed = orderedPool(dataBlocks(runs), readAhead, async (index) => {
        const buf = free.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE);
        try {
          await readImageBlock(image, index, buf, signal);
          return { index, digest: digestOf(buf) };
        } finally {
          free.push(buf);
        }
      });
      for await (const { index, digest } of hashed)
        if (digest !== undefined) table.append(index, digest);
    }
    return new ImageBlockSource(image, runs, table);
  } catch (error) {
    await image.close();
    throw error;
  }
}

function* dataBlocks(runs: readonly Run[]): Iterable<number> {
  for (const r of runs) if (r.kind === 'data') for (let i = r.start; i < r.end; i++) yield i;
}

/**
 * Lays a map's chunk digests over the allocation map: data blocks the map
 * says are all zeros become `zero`. A digest for a block with no data means
 * the map is not this image's.
 */
function applyMap(path: string, runs: readonly Run[], chunks: ReadonlyMap<number, string>): Run[] {
  const out: Run[] = [];
  const push = (start: number, end: number, kind: ExtentKind): void => {
    if (end <= start) return;
    const last = out[out.length - 1];
    if (last !== undefined && last.kind === kind && last.end === start) {
      out[out.length - 1] = { start: last.start, end, kind };
    } else out.push({ start, end, kind });
  };
  const indexes = [...chunks.keys()].sort((a, b) => a - b);
  let k = 0;
  for (const r of runs) {
    const from = k;
    while (k < indexes.length && indexes[k]! < r.end) k++;
    if (r.kind !== 'data') {
      if (k > from) {
        throw mapError(path, `it has a digest for block ${indexes[from]}, which holds no data`);
      }
      push(r.start, r.end, r.kind);
      continue;
    }
    let at = r.start;
    for (let j = from; j < k; j++) {
      const i = indexes[j]!;
      push(at, i, 'zero');
      push(i, i + 1, 'data');
      at = i + 1;
    }
    push(at, r.end, 'zero');
  }
  return out;
}
