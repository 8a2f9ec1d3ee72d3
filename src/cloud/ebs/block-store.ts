import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';

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
  /** Removals in flight: a put of the same digest waits for its unlink. */
  private readonly removing = new Map<string, Promise<void>>();
  private readonly now: () => number;
  private tmpSeq = 0;

  constructor(root: string, now: () => number = Date.now) {
    this.root = root;
    this.now = now;
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
    const write = this.write(digest, data);
    this.writing.set(digest, write);
    try {
      return await write;
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

  /** Says that the directory put() returned for `digest` was fsynced. */
  synced(digest: string): void {
    this.unsynced.delete(digest);
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
