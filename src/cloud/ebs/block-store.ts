import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir } from '../../util/sync-dir.js';
import { BodyPool } from '../body-pool.js';
import { BlockPack, decodeHeader, SLOT_HEADER, SLOT_SIZE } from './block-pack.js';
import { BLOCK_SIZE } from './limits.js';

/** The SHA-256 of a block, as 64 hex digits: its name in the store. */
export function blockDigest(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Slots per pack file (about 516 MiB). */
export const PACK_SLOTS = 1024;
const PACK_NAME = /^(\d{8})\.pack$/;
const DIGEST = /^[0-9a-f]{64}$/;

/** Where a stored block lies: a slot of a pack, or a file of the layout before packs. */
type Location =
  | { readonly pack: BlockPack; readonly slot: number; time: number }
  | { readonly file: string; time: number };

/** What garbage collection's compaction did. */
export interface CompactResult {
  /** Blocks copied out of mostly empty packs. */
  readonly moved: number;
  /** Pack files removed. */
  readonly packsRemoved: number;
}

/**
 * Block data, content-addressed by SHA-256 and shared by every account,
 * region and snapshot of one engine:
 *
 *   packs/<8 digits>.pack     blocks in fixed slots (see BlockPack)
 *   packs/<8 digits>.sealed   the pack was closed whole: open() trusts it
 *   blocks/ab/<64 hex>        a block of a data directory from before packs (read, removed, never written)
 *
 * New blocks are appended to one pack at a time; a put resolves once its
 * block is durable, and the puts of a batch share one fdatasync. A pack is
 * sealed when full or at close(). After a crash the pack that was being
 * written has no seal: open() checks each of its blocks against its
 * SHA-256, keeps the whole ones (every acknowledged put among them: each was
 * fdatasynced first) and seals it. Identical data is stored once.
 *
 * Every stored block's location is kept in memory (about 200 bytes each).
 * remove() forgets a block; a pack with no block left is deleted, and
 * compact() copies the few blocks left in mostly empty packs into the
 * current one so that their space comes back. A block removed from a pack
 * that is still there is listed again by the next open(), and the next
 * garbage collection removes it again. One engine owns the directory (its
 * lock), so no one else adds or removes blocks meanwhile.
 */
export class BlockStore {
  readonly root: string;
  private readonly packsDir: string;
  private readonly known = new Map<string, Location>();
  private readonly packs = new Map<number, BlockPack>();
  private active: BlockPack | null = null;
  /** The last pack found at open with free slots: the first put reopens it. */
  private resumable: BlockPack | null = null;
  private opening: Promise<BlockPack> | null = null;
  private nextSeq = 1;
  /** Puts of new blocks in flight: a put of the same digest meanwhile waits for it. */
  private readonly writing = new Map<string, Promise<void>>();
  /**
   * Copies of the blocks written last (oldest first), for holds(): the
   * placements of one image put the same blocks at about the same time.
   */
  private readonly recent = new Map<string, Buffer>();
  private readonly recentMax: number;
  private readonly packSlots: number;
  private readonly now: () => number;
  /** Read buffers for holds() and open()'s checks (16 kept: 8 MiB). */
  private readonly scratch = new BodyPool(BLOCK_SIZE, 16);

  /**
   * `recentBlocks`: how many written blocks holds() keeps copies of (default
   * 64: 32 MiB); `packSlots`: blocks per pack file.
   */
  constructor(
    root: string,
    now: () => number = Date.now,
    recentBlocks = 64,
    packSlots = PACK_SLOTS,
  ) {
    this.root = root;
    this.packsDir = join(root, 'packs');
    this.now = now;
    this.recentMax = Math.max(0, Math.floor(recentBlocks));
    this.packSlots = Math.max(1, Math.floor(packSlots));
  }

  /** Lists the stored blocks, checking and sealing a pack a crash left unsealed. */
  async open(): Promise<void> {
    await mkdir(this.packsDir, { recursive: true });
    // Temporary files of the layout before packs.
    await rm(join(this.root, 'tmp'), { recursive: true, force: true });
    this.known.clear();
    for (const digest of await this.legacyBlocks()) {
      this.known.set(digest, { file: this.legacyPath(digest), time: 0 });
    }
    const names = await readdir(this.packsDir);
    const seqs = names
      .map((n) => PACK_NAME.exec(n)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const sealedNames = new Set(names.filter((n) => n.endsWith('.sealed')));
    for (const seq of seqs) {
      const sealed = sealedNames.has(`${packName(seq)}.sealed`);
      const pack = await BlockPack.open(seq, this.packPath(seq), false, sealed);
      this.packs.set(seq, pack);
      await this.scan(pack);
      if (!sealed) await this.seal(pack);
      if (pack.live === 0) await this.dropPack(pack);
      this.nextSeq = seq + 1;
    }
    const last = this.packs.get(this.nextSeq - 1);
    if (last !== undefined && last.slots < this.packSlots) this.resumable = last;
  }

  /** Lists a pack's blocks; an unsealed pack's are checked against their SHA-256. */
  private async scan(pack: BlockPack): Promise<void> {
    const buf = pack.sealed ? null : this.scratch.take();
    try {
      for (let slot = 0; slot < pack.slots; slot++) {
        const raw = await pack.header(slot);
        const h = raw === null ? null : decodeHeader(raw);
        if (h === null || this.known.has(h.digest)) continue;
        if (buf !== null && !(await pack.verify(slot, h.digest, buf))) {
          // Torn by the crash: voided before the seal makes the pack's headers trusted.
          await pack.clearHeader(slot);
          continue;
        }
        this.known.set(h.digest, { pack, slot, time: h.time });
        pack.live++;
      }
    } finally {
      if (buf !== null) this.scratch.give(buf);
    }
  }

  has(digest: string): boolean {
    return this.known.has(digest);
  }

  /**
   * When the block was last put (ms, the engine's clock): by this process,
   * or as its pack records it; 0 for a block of the layout before packs;
   * undefined for one not stored. Garbage collection spares a block put
   * within its grace period: a put may be about to record it.
   */
  lastPut(digest: string): number | undefined {
    return this.known.get(digest)?.time;
  }

  /** Where a block's bytes lie on disk (for checks and tests). */
  location(digest: string): { path: string; offset: number } | undefined {
    const loc = this.known.get(digest);
    if (loc === undefined) return undefined;
    return 'file' in loc
      ? { path: loc.file, offset: 0 }
      : { path: loc.pack.path, offset: loc.slot * SLOT_SIZE + SLOT_HEADER };
  }

  /** Makes `data` (whose SHA-256 is `digest`) durable under its name. */
  async put(digest: string, data: Buffer): Promise<void> {
    const loc = this.known.get(digest);
    if (loc !== undefined) {
      loc.time = this.now();
      return;
    }
    // The same block from several placements at once is written once.
    const inFlight = this.writing.get(digest);
    if (inFlight !== undefined) return inFlight;
    this.remember(digest, data);
    const write = this.write(digest, data, this.now());
    this.writing.set(digest, write);
    try {
      await write;
    } catch (error) {
      this.recent.delete(digest);
      throw error;
    } finally {
      this.writing.delete(digest);
    }
  }

  private async write(digest: string, data: Buffer, time: number): Promise<void> {
    const pack = await this.current();
    const slot = pack.reserve();
    if (pack.slots >= this.packSlots) this.active = null;
    await pack.write(slot, digest, time, data);
    this.known.set(digest, { pack, slot, time });
    pack.live++;
    // The last write into a full pack seals it.
    if (pack.writing === 0 && pack.slots >= this.packSlots && !pack.sealed) await this.seal(pack);
  }

  /** The pack new blocks go to: the one in use, the last one reopened, or a new one. */
  private current(): Promise<BlockPack> {
    if (this.active !== null) return Promise.resolve(this.active);
    this.opening ??= this.nextPack().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  private async nextPack(): Promise<BlockPack> {
    let pack = this.resumable;
    this.resumable = null;
    if (pack !== null) {
      // Unsealed from now on (durably, before any write), so that a crash gets it checked.
      await unlink(this.sealPath(pack.seq)).catch(() => {});
      await syncDir(this.packsDir);
      pack.sealed = false;
    } else {
      const seq = this.nextSeq++;
      pack = await BlockPack.open(seq, this.packPath(seq), true, false);
      this.packs.set(seq, pack);
      await syncDir(this.packsDir);
    }
    this.active = pack;
    return pack;
  }

  /** Makes a pack durable and marks it whole: open() trusts a sealed pack's headers. */
  private async seal(pack: BlockPack): Promise<void> {
    await pack.endPuts();
    await pack.sync();
    await writeFile(this.sealPath(pack.seq), '');
    pack.sealed = true;
  }

  /**
   * Keeps a copy of a block being written (a new buffer each time: a copy
   * is never modified, so recentCopy() can hand it out), dropping the oldest.
   */
  private remember(digest: string, data: Buffer): void {
    if (this.recentMax === 0 || data.length !== BLOCK_SIZE) return;
    if (this.recent.size >= this.recentMax) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
    const copy = Buffer.allocUnsafeSlow(BLOCK_SIZE);
    data.copy(copy);
    this.recent.set(digest, copy);
  }

  /**
   * The bytes of a block written lately, if a copy is kept: its SHA-256 is
   * `digest`, and the buffer is never modified (a caller may keep it).
   */
  recentCopy(digest: string): Buffer | undefined {
    return this.recent.get(digest);
  }

  /**
   * Whether the stored block named `digest` holds exactly `data`: then the
   * SHA-256 of `data` is `digest`, without hashing it (a read from the page
   * cache and a compare cost a fraction of SHA-256). False when the block is
   * not stored or cannot be read.
   */
  async holds(digest: string, data: Buffer): Promise<boolean> {
    if (data.length !== BLOCK_SIZE) return false;
    const copy = this.recent.get(digest);
    if (copy !== undefined) return copy.equals(data);
    const loc = this.known.get(digest);
    if (loc === undefined) return false;
    const buf = this.scratch.take();
    try {
      return (await this.readAt(loc, buf)) && buf.equals(data);
    } catch {
      return false;
    } finally {
      this.scratch.give(buf);
    }
  }

  /** A stored block's bytes (shorter than a block if its file or pack was cut). */
  async read(digest: string): Promise<Buffer> {
    const loc = this.known.get(digest);
    if (loc === undefined) {
      throw Object.assign(new Error(`block ${digest} is not stored`), { code: 'ENOENT' });
    }
    if ('file' in loc) return readFile(loc.file);
    const buf = Buffer.allocUnsafe(BLOCK_SIZE);
    return (await loc.pack.readInto(loc.slot, buf)) ? buf : buf.subarray(0, 0);
  }

  private async readAt(loc: Location, into: Buffer): Promise<boolean> {
    if ('pack' in loc) return loc.pack.readInto(loc.slot, into);
    const data = await readFile(loc.file);
    if (data.length !== into.length) return false;
    data.copy(into);
    return true;
  }

  /** Every stored digest, sorted (for garbage collection and checks). */
  async list(): Promise<string[]> {
    return [...this.known.keys()].sort();
  }

  /** Forgets a block (a put of it from now on stores it again); an emptied pack is deleted. */
  async remove(digest: string): Promise<void> {
    const loc = this.known.get(digest);
    if (loc === undefined || this.writing.has(digest)) return;
    this.known.delete(digest);
    this.recent.delete(digest);
    if ('file' in loc) {
      await unlink(loc.file).catch(() => {});
      return;
    }
    loc.pack.live--;
    if (loc.pack.live === 0 && loc.pack.sealed && loc.pack !== this.active) {
      await this.dropPack(loc.pack);
    }
  }

  /**
   * Gives back the space of removed blocks: the blocks left in a sealed pack
   * at most a quarter full are copied into the current pack (durably, with
   * their put times), then the pack is deleted. A crash midway leaves a
   * block in both packs: open() keeps one.
   */
  async compact(): Promise<CompactResult> {
    let moved = 0;
    let packsRemoved = 0;
    for (const pack of [...this.packs.values()]) {
      if (!pack.sealed || pack === this.active || pack.live * 4 > pack.slots) continue;
      const inPack: Array<[string, number]> = [];
      for (const [digest, loc] of this.known) {
        if ('pack' in loc && loc.pack === pack) inPack.push([digest, loc.time]);
      }
      const buf = this.scratch.take();
      try {
        for (const [digest, time] of inPack) {
          const loc = this.known.get(digest);
          if (loc === undefined || !('pack' in loc) || loc.pack !== pack) continue;
          if (this.writing.has(digest)) continue;
          if (!(await pack.verify(loc.slot, digest, buf))) continue;
          const write = this.write(digest, Buffer.from(buf), time);
          this.writing.set(digest, write);
          try {
            await write;
          } finally {
            this.writing.delete(digest);
          }
          pack.live--;
          moved++;
        }
      } finally {
        this.scratch.give(buf);
      }
      // A block left (damaged: not copied) goes with its pack.
      for (const [digest] of inPack) {
        const loc = this.known.get(digest);
        if (loc !== undefined && 'pack' in loc && loc.pack === pack) this.known.delete(digest);
      }
      await this.dropPack(pack);
      packsRemoved++;
    }
    return { moved, packsRemoved };
  }

  private async dropPack(pack: BlockPack): Promise<void> {
    this.packs.delete(pack.seq);
    if (this.resumable === pack) this.resumable = null;
    await unlink(this.sealPath(pack.seq)).catch(() => {});
    await pack.drop();
  }

  /** Seals the pack in use and closes every pack. */
  async close(): Promise<void> {
    await this.opening?.catch(() => {});
    await Promise.allSettled([...this.writing.values()]);
    const active = this.active;
    this.active = null;
    if (active !== null && !active.sealed) await this.seal(active);
    for (const pack of this.packs.values()) await pack.close();
    this.packs.clear();
  }

  /** Pack files and their sizes (for checks and tests). */
  async packFiles(): Promise<Array<{ path: string; bytes: number; sealed: boolean }>> {
    const out: Array<{ path: string; bytes: number; sealed: boolean }> = [];
    for (const pack of [...this.packs.values()].sort((a, b) => a.seq - b.seq)) {
      const s = await stat(pack.path).catch(() => null);
      out.push({ path: pack.path, bytes: s?.size ?? 0, sealed: pack.sealed });
    }
    return out;
  }

  private packPath(seq: number): string {
    return join(this.packsDir, `${packName(seq)}.pack`);
  }

  private sealPath(seq: number): string {
    return join(this.packsDir, `${packName(seq)}.sealed`);
  }

  private legacyPath(digest: string): string {
    return join(this.root, 'blocks', digest.slice(0, 2), digest);
  }

  /** Blocks stored one file each, by a version before packs. */
  private async legacyBlocks(): Promise<string[]> {
    const out: string[] = [];
    const shards = await readdir(join(this.root, 'blocks')).catch(() => [] as string[]);
    for (const s of shards) {
      if (!/^[0-9a-f]{2}$/.test(s)) continue;
      for (const name of await readdir(join(this.root, 'blocks', s)).catch(() => [] as string[])) {
        if (DIGEST.test(name) && name.startsWith(s)) out.push(name);
      }
    }
    return out;
  }
}

function packName(seq: number): string {
  return String(seq).padStart(8, '0');
}

export { syncDir } from '../../util/sync-dir.js';
