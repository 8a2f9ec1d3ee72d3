/**
 * The node's image cache, as a Eucalyptus node controller keeps one: a root
 * snapshot is materialized once as a sparse raw file under DATA/cache/ and
 * shared by every instance booted from it (each through its own qcow2
 * overlay, so nobody writes to it). A download reads the snapshot's blocks
 * from the EBS engine, checks each against its SHA-256, writes them to a
 * temporary file, fsyncs and renames it; a failed download is retried up to
 * the configured number of attempts. The cache has a size cap: entries no
 * instance uses are evicted, least recently used first, to make room.
 *
 * The index (DATA/cache/index.json, written atomically) names the entries,
 * their users and when they were last used; files it does not name are
 * leftovers of an interrupted download and are removed on open.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../store/local-store.js';
import { BLOCK_SIZE, type BlockMap, type EbsContext, type EbsEngine } from '../ebs/index.js';
import { isSnapshotId } from './ids.js';

export type BlockReader = (ctx: EbsContext, snapshotId: string, index: number) => Promise<Buffer>;

export type CacheEngine = Pick<EbsEngine, 'snapshotBlocks' | 'readBlock' | 'getSnapshot'>;

export interface ImageCacheOptions {
  readonly root: string;
  readonly engine: CacheEngine;
  /** How blocks are read (default: the engine's readBlock); tests inject failures here. */
  readonly readBlock?: BlockReader;
  /** Cap on the cache's allocated bytes. */
  readonly maxBytes: number;
  /** Downloads tried before the launch fails (1 to 98, as Eucalyptus bounds it). */
  readonly downloadAttempts: number;
  /** Wait before attempt n+1: n times this. */
  readonly retryDelayMs: number;
  readonly now: () => number;
}

export interface SnapshotSource {
  /** The account that owns the snapshot. */
  readonly owner: string;
  readonly region: string;
  readonly snapshotId: string;
}

export interface CacheEntry {
  readonly key: string;
  readonly file: string;
  /** Bytes allocated on disk (the file is sparse). */
  readonly bytes: number;
  /** The raw disk's size. */
  readonly virtualSize: number;
  readonly lastUsed: number;
  /** Instances whose overlays read this file: it is never evicted while one remains. */
  readonly users: readonly string[];
}

interface CacheIndex {
  readonly version: 1;
  entries: CacheEntry[];
}

/** A launch failure the instance reports as its state reason. */
export class CacheError extends Error {
  override readonly name = 'CacheError';
  constructor(
    readonly reason: 'download' | 'capacity',
    message: string,
  ) {
    super(message);
  }
}

const INDEX = 'index.json';
const READS_IN_FLIGHT = 4;

function cacheKey(s: SnapshotSource): string {
  if (!/^\d{12}$/.test(s.owner) || !/^[a-z0-9-]+$/.test(s.region) || !isSnapshotId(s.snapshotId))
    throw new CacheError('download', `Cannot cache snapshot ${s.snapshotId}: not a snapshot id`);
  return `${s.owner}.${s.region}.${s.snapshotId}`;
}

export class ImageCache {
  private index: CacheIndex;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly inflight = new Map<string, Promise<CacheEntry>>();
  /** Bytes promised to downloads in progress, so two cannot both take the last room. */
  private readonly reserved = new Map<string, number>();

  private constructor(
    private readonly options: ImageCacheOptions,
    index: CacheIndex,
  ) {
    this.index = index;
  }

  static async open(options: ImageCacheOptions): Promise<ImageCache> {
    await mkdir(options.root, { recursive: true });
    let index: CacheIndex = { version: 1, entries: [] };
    try {
      const parsed = JSON.parse(await readFile(join(options.root, INDEX), 'utf8')) as CacheIndex;
      if (parsed.version === 1 && Array.isArray(parsed.entries)) index = parsed;
    } catch {
      // Missing or damaged: the files are swept below and downloaded again when needed.
    }
    const names = new Set(await readdir(options.root));
    index.entries = index.entries.filter(
      (e) => typeof e.file === 'string' && e.file === `${e.key}.raw` && names.has(e.file),
    );
    const kept = new Set([INDEX, ...index.entries.map((e) => e.file)]);
    for (const name of names)
      if (!kept.has(name)) await rm(join(options.root, name), { force: true, recursive: true });
    const cache = new ImageCache(options, index);
    await cache.save();
    return cache;
  }

  entries(): readonly CacheEntry[] {
    return this.index.entries;
  }

  /** The absolute path of a cached raw file. */
  path(entry: CacheEntry): string {
    return join(this.options.root, entry.file);
  }

  /**
   * The raw file of `source`, downloaded if it is not cached, with `user`
   * recorded as using it. Rejects with a CacheError when the download fails
   * after every attempt or the cap leaves no room.
   */
  async acquire(source: SnapshotSource, user: string): Promise<string> {
    const key = cacheKey(source);
    for (;;) {
      const found = await this.locked(async () => {
        const e = this.index.entries.find((x) => x.key === key);
        if (e === undefined) return undefined;
        this.replace({
          ...e,
          lastUsed: this.options.now(),
          users: e.users.includes(user) ? e.users : [...e.users, user],
        });
        await this.save();
        return e;
      });
      if (found !== undefined) return this.path(found);
      let flight = this.inflight.get(key);
      if (flight === undefined) {
        flight = this.download(source, key).finally(() => this.inflight.delete(key));
        this.inflight.set(key, flight);
      }
      await flight;
      // Loop: the entry is in the index now (unless evicted meanwhile, then it is fetched again).
    }
  }

  /** `user` no longer reads any cached file (its instance terminated). */
  async release(user: string): Promise<void> {
    await this.locked(async () => {
      let changed = false;
      for (const e of this.index.entries)
        if (e.users.includes(user)) {
          this.replace({ ...e, users: e.users.filter((u) => u !== user) });
          changed = true;
        }
      if (changed) await this.save();
    });
  }

  private async download(source: SnapshotSource, key: string): Promise<CacheEntry> {
    const ctx = { account: source.owner, region: source.region };
    const { engine } = this.options;
    const info = await engine.getSnapshot(ctx, source.snapshotId);
    if (info === undefined || info.status !== 'completed')
      throw new CacheError(
        'download',
        `snapshot ${source.snapshotId} is ${info === undefined ? 'gone' : info.status}`,
      );
    const map = await engine.snapshotBlocks(ctx, source.snapshotId);
    const virtualSize = info.volumeSize * 1024 * 1024 * 1024;
    await this.reserve(key, map.length * BLOCK_SIZE);
    try {
      let last: unknown;
      const attempts = this.options.downloadAttempts;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        try {
          const bytes = await this.fetch(ctx, source.snapshotId, map, virtualSize, key);
          return await this.locked(async () => {
            const entry: CacheEntry = {
              key,
              file: `${key}.raw`,
              bytes,
              virtualSize,
              lastUsed: this.options.now(),
              users: [],
            };
            this.index.entries = [...this.index.entries.filter((e) => e.key !== key), entry];
            await this.save();
            return entry;
          });
        } catch (error) {
          last = error;
          if (attempt < attempts)
            await new Promise((r) => setTimeout(r, this.options.retryDelayMs * attempt));
        }
      }
      throw new CacheError(
        'download',
        `downloading snapshot ${source.snapshotId} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${(last as Error).message}`,
      );
    } finally {
      this.reserved.delete(key);
    }
  }

  /** Evicts unused entries, least recently used first, until `bytes` more fit under the cap. */
  private reserve(key: string, bytes: number): Promise<void> {
    return this.locked(async () => {
      const { maxBytes } = this.options;
      const used = () =>
        this.index.entries.reduce((n, e) => n + e.bytes, 0) +
        [...this.reserved.values()].reduce((n, b) => n + b, 0);
      const idle = this.index.entries
        .filter((e) => e.users.length === 0)
        .sort((a, b) => a.lastUsed - b.lastUsed);
      while (used() + bytes > maxBytes && idle.length > 0) {
        const victim = idle.shift()!;
        this.index.entries = this.index.entries.filter((e) => e.key !== victim.key);
        await this.save();
        await rm(join(this.options.root, victim.file), { force: true });
      }
      if (used() + bytes > maxBytes)
        throw new CacheError(
          'capacity',
          `the image cache cannot hold ${bytes} more bytes: ${used()} of ${maxBytes} are in use by instances`,
        );
      this.reserved.set(key, bytes);
    });
  }

  /** One download attempt: blocks checked and written at their offsets; returns the bytes allocated. */
  private async fetch(
    ctx: EbsContext,
    snapshotId: string,
    map: BlockMap,
    virtualSize: number,
    key: string,
  ): Promise<number> {
    const read = this.options.readBlock ?? ((c, s, i) => this.options.engine.readBlock(c, s, i));
    const tmp = join(this.options.root, `${key}.${randomBytes(6).toString('hex')}.tmp`);
    const final = join(this.options.root, `${key}.raw`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.truncate(virtualSize);
      let next = 0;
      let failed = false;
      const worker = async () => {
        while (next < map.length && !failed) {
          const [index, digest] = map[next++]!;
          if (index * BLOCK_SIZE >= virtualSize)
            throw new Error(`block ${index} lies beyond the volume`);
          const data = await read(ctx, snapshotId, index);
          if (data.length !== BLOCK_SIZE)
            throw new Error(`block ${index} has ${data.length} bytes, not ${BLOCK_SIZE}`);
          if (createHash('sha256').update(data).digest('hex') !== digest)
            throw new Error(`block ${index} does not match its SHA-256 checksum`);
          // Zero blocks stay holes: the file stays as sparse as the snapshot.
          if (data.some((b) => b !== 0)) await fh.write(data, 0, data.length, index * BLOCK_SIZE);
        }
      };
      // Every worker settles before the file is closed: none may write to a reused descriptor.
      const results = await Promise.allSettled(
        Array.from({ length: READS_IN_FLIGHT }, () =>
          worker().catch((error: unknown) => {
            failed = true;
            throw error;
          }),
        ),
      );
      const rejected = results.find((r) => r.status === 'rejected');
      if (rejected !== undefined) throw (rejected as PromiseRejectedResult).reason;
      await fh.sync();
    } catch (error) {
      await fh.close();
      await rm(tmp, { force: true });
      throw error;
    }
    await fh.close();
    await rename(tmp, final);
    await syncDir(this.options.root);
    return (await stat(final)).blocks * 512;
  }

  private replace(entry: CacheEntry): void {
    this.index.entries = this.index.entries.map((e) => (e.key === entry.key ? entry : e));
  }

  private save(): Promise<void> {
    return writeFileAtomic(join(this.options.root, INDEX), `${JSON.stringify(this.index)}\n`);
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => {});
    return run;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
