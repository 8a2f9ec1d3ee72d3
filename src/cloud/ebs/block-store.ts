import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../store/local-store.js';
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
 */
export class BlockStore {
  readonly root: string;
  private readonly shards = new Set<string>();

  constructor(root: string) {
    this.root = root;
  }

  /** Creates the directories and removes temporary files a crash left behind. */
  async open(): Promise<void> {
    await mkdir(join(this.root, 'blocks'), { recursive: true });
    await rm(join(this.root, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.root, 'tmp'), { recursive: true });
  }

  shardDir(digest: string): string {
    return join(this.root, 'blocks', digest.slice(0, 2));
  }

  path(digest: string): string {
    return join(this.shardDir(digest), digest);
  }

  async has(digest: string): Promise<boolean> {
    try {
      return (await stat(this.path(digest))).size === BLOCK_SIZE;
    } catch {
      return false;
    }
  }

  /**
   * Makes `data` (whose SHA-256 is `digest`) durable under its name and
   * returns the directory that gained an entry, which the caller fsyncs before
   * it records the block (null when the block was already stored).
   */
  async put(digest: string, data: Buffer): Promise<string | null> {
    if (await this.has(digest)) {
      // Fresh again, so that garbage collection's grace period covers the
      // put that is about to refer to it.
      const now = new Date();
      try {
        await utimes(this.path(digest), now, now);
        return null;
      } catch {
        // collected meanwhile: store it again
      }
    }
    const dir = this.shardDir(digest);
    if (!this.shards.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.shards.add(dir);
    }
    const tmp = join(this.root, 'tmp', `${digest.slice(0, 16)}.${randomBytes(6).toString('hex')}`);
    await writeFileAtomic(this.path(digest), data, tmp);
    return dir;
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

  async remove(digest: string): Promise<void> {
    await unlink(this.path(digest)).catch(() => {});
  }
}

export { syncDir } from '../../util/sync-dir.js';
