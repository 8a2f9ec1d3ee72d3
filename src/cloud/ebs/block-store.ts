import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BodyPool } from '../body-pool.js';
import { BLOCK_SIZE } from './limits.js';

/** The SHA-256 of a block, as the 64 hex digits that name its file. */
export function blockDigest(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Block data, content-addressed by SHA-256 and shared by every account,
 * region and snapshot of one engine:
 *
 *   blocks/ab/<64 hex digits>   one 512 KiB block
 *   tmp/                        blocks being written
 *
 * A block is written to tmp/, fsynced and renamed into place, so a file under
 * blocks/ is always whole; a crash leaves at most a stray temporary file,
 * which open() sweeps. Identical data is stored once.
 *
 * The stored digests are listed once, at open(), and kept in memory (about
 * 150 bytes each), so that a put of a block already stored (another
 * placement of the same image: the common case) costs no file system call.
 * One engine owns the directory (its lock), so no one else adds or removes
 * blocks meanwhile.
 */
export class BlockStore {
  readonly root: string;
  private readonly shards = new Set<string>();
  /** Every stored digest, with when this process last put it (ms; 0: found at open). */
  private readonly known = new Map<string, number>();
  /** Digests renamed into a shard whose directory has not been fsynced yet, with that shard. */
  private readonly unsynced = new Map<string, string>();
  /** Puts of new blocks in flight: a put of the same digest meanwhile waits for it. */
  private readonly writing = new Map<string, Promise<string | null>>();
  /**
   * Copies of the blocks written last (oldest first), for holds(): the
   * placements of one image put the same blocks at about the same time.
   */
  private readonly recent = new Map<string, Buffer>();
  private readonly recentMax: number;
  /** Removals in flight: a put of the same digest waits for its unlink. */
  private readonly removing = new Map<string, Promise<void>>();
  private readonly now: () => number;
  /** Read buffers for holds() (16 kept: 8 MiB). */
  private readonly compareBuffers = new BodyPool(BLOCK_SIZE, 16);
  private tmpSeq = 0;

  /** `recentBlocks`: how many written blocks holds() keeps copies of (default 64: 32 MiB). */
  constructor(root: string, now: () => number = Date.now, recentBlocks = 64) {
    this.root = root;
    this.now = now;
    this.recentMax = Math.max(0, Math.floor(recentBlocks));
  }

  /** Creates the directories, removes temporary files a crash left behind and lists the blocks. */
  async open(): Promise<void> {
    await mkdir(join(this.root, 'blocks'), { recursive: true });
    await rm(join(this.root, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.root, 'tmp'), { recursive: true });
    this.known.clear();
    for (const digest of await this.list()) this.known.set(digest, 0);
  }

  shardDir(digest: string): string {
    return join(this.root, 'blocks', digest.slice(0, 2));
  }

  path(digest: string): string {
    return join(this.shardDir(digest), digest);
  }

  has(digest: string): boolean {
    return this.known.has(digest);
  }

  /**
   * When this process last put `digest` (ms), 0 for a block found at open,
   * undefined for one not stored. Garbage collection spares a block put
   * within its grace period: a put may be about to record it.
   */
  lastPut(digest: string): number | undefined {
    return this.known.get(digest);
  }

  /**
   * Makes `data` (whose SHA-256 is `digest`) durable under its name and
   * returns the directory that gained an entry, which the caller fsyncs before
   * it records the block, then reports with synced() (null when the block
   * was already stored and its entry is durable).
   */
  async put(digest: string, data: Buffer): Promise<string | null> {
    const removal = this.removing.get(digest);
    if (removal !== undefined) await removal;
    if (this.known.has(digest)) {
      this.known.set(digest, this.now());
      // Stored by a put whose directory fsync may still be ahead: sync it too.
      return this.unsynced.get(digest) ?? null;
    }
    // The same block from several placements at once is written once.
    const inFlight = this.writing.get(digest);
    if (inFlight !== undefined) return inFlight;
    this.remember(digest, data);
    const write = this.write(digest, data);
    this.writing.set(digest, write);
    try {
      return await write;
    } catch (error) {
      this.recent.delete(digest);
      throw error;
    } finally {
      this.writing.delete(digest);
    }
  }

  private async write(digest: string, data: Buffer): Promise<string> {
    const dir = this.shardDir(digest);
    if (!this.shards.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.shards.add(dir);
    }
    // One engine owns tmp/ (swept at open): a counter names its files.
    const tmp = join(this.root, 'tmp', `${digest.slice(0, 16)}.${++this.tmpSeq}`);
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } catch (error) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw error;
    }
    await fh.close();
    try {
      await rename(tmp, this.path(digest));
    } catch (error) {
      await unlink(tmp).catch(() => {});
      throw error;
    }
    this.known.set(digest, this.now());
    this.unsynced.set(digest, dir);
    return dir;
  }

  /** Keeps a copy of a block being written, reusing the oldest copy's buffer when full. */
  private remember(digest: string, data: Buffer): void {
    if (this.recentMax === 0 || data.length !== BLOCK_SIZE) return;
    let buf: Buffer | undefined;
    if (this.recent.size >= this.recentMax) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) {
        buf = this.recent.get(oldest);
        this.recent.delete(oldest);
      }
    }
    buf ??= Buffer.allocUnsafeSlow(BLOCK_SIZE);
    data.copy(buf);
    this.recent.set(digest, buf);
  }

  /** Says that the directory put() returned for `digest` was fsynced. */
  synced(digest: string): void {
    this.unsynced.delete(digest);
  }

  /**
   * Whether the stored block named `digest` holds exactly `data`: then the
   * SHA-256 of `data` is `digest`, without hashing it (a read from the page
   * cache and a compare cost a fraction of SHA-256). False when the block is
   * not stored, is being removed, or cannot be read.
   */
  async holds(digest: string, data: Buffer): Promise<boolean> {
    if (data.length !== BLOCK_SIZE || this.removing.has(digest)) return false;
    const copy = this.recent.get(digest);
    if (copy !== undefined) return copy.equals(data);
    if (!this.known.has(digest)) return false;
    const buf = this.compareBuffers.take();
    try {
      const fh = await open(this.path(digest), 'r');
      try {
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        return bytesRead === data.length && buf.equals(data);
      } finally {
        await fh.close();
      }
    } catch {
      return false;
    } finally {
      this.compareBuffers.give(buf);
    }
  }

  async read(digest: string): Promise<Buffer> {
    return readFile(this.path(digest));
  }

  /** Every stored digest (for garbage collection and checks). */
  async list(): Promise<string[]> {
    const out: string[] = [];
    const shards = await readdir(join(this.root, 'blocks')).catch(() => [] as string[]);
    for (const s of shards.sort()) {
      for (const name of (await readdir(join(this.root, 'blocks', s))).sort()) {
        if (/^[0-9a-f]{64}$/.test(name)) out.push(name);
      }
    }
    return out;
  }

  /** Removes a block; a put of it from now on stores it again. */
  async remove(digest: string): Promise<void> {
    this.known.delete(digest);
    this.recent.delete(digest);
    this.unsynced.delete(digest);
    const done = unlink(this.path(digest)).catch(() => {});
    this.removing.set(digest, done);
    try {
      await done;
    } finally {
      if (this.removing.get(digest) === done) this.removing.delete(digest);
    }
  }
}

export { syncDir } from '../../util/sync-dir.js';
