import { createHash } from 'node:crypto';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { DirectHandle, writeThrough } from '../../disk/index.js';
import { crc32c } from '../../util/crc32c.js';
import { BLOCK_SIZE } from './limits.js';

/**
 * One pack file of the local EBS block store: whole 512 KiB blocks in fixed
 * slots, each a 4 KiB header and the block (so block data stays page-aligned):
 *
 *   header  "FERRYBK1" | SHA-256 (32 bytes) | put time (ms, float64 LE) |
 *           data length (u32 LE) | CRC-32C of the 52 bytes before (u32 LE)
 *
 * A block is one positioned write of its slot; writes that complete while a
 * fdatasync runs wait for the next one, so one fdatasync makes a whole batch
 * durable (group commit), where a file per block cost an fsync, a rename and
 * a directory fsync each.
 *
 * A pack open for puts writes its slots past the page cache (O_DIRECT through
 * a DirectHandle, where the file system allows; FERRY_NO_DIRECT_IO=1 turns it
 * off): a slot is page-aligned and a whole number of pages, a stored block is
 * seldom read back soon, and on a VM that hands freed memory back to its host
 * every fresh page-cache page costs a host fault (see docs/benchmarks.md).
 * The fdatasync on the pack's own handle still makes the writes durable.
 */
export const SLOT_HEADER = 4096;
export const SLOT_SIZE = SLOT_HEADER + BLOCK_SIZE;
const MAGIC = Buffer.from('FERRYBK1', 'latin1');
const HEADER_USED = 56;

/** What a slot's header says: a whole block, or nothing usable. */
export interface SlotHeader {
  readonly digest: string;
  readonly time: number;
}

export function encodeHeader(digest: string, time: number): Buffer {
  const h = Buffer.alloc(SLOT_HEADER);
  MAGIC.copy(h, 0);
  Buffer.from(digest, 'hex').copy(h, 8);
  h.writeDoubleLE(time, 40);
  h.writeUInt32LE(BLOCK_SIZE, 48);
  h.writeUInt32LE(crc32c(h.subarray(0, 52)), 52);
  return h;
}

/** Decodes a slot header; null for anything but a whole, well-formed one. */
export function decodeHeader(h: Buffer): SlotHeader | null {
  if (h.length < HEADER_USED || !h.subarray(0, 8).equals(MAGIC)) return null;
  if (h.readUInt32LE(52) !== crc32c(h.subarray(0, 52))) return null;
  if (h.readUInt32LE(48) !== BLOCK_SIZE) return null;
  const time = h.readDoubleLE(40);
  if (!Number.isFinite(time) || time < 0) return null;
  return { digest: h.subarray(8, 40).toString('hex'), time };
}

export class BlockPack {
  readonly seq: number;
  readonly path: string;
  /** Slots in use or reserved: the next put takes this one. */
  slots: number;
  /** Slots holding a block the store still lists. */
  live = 0;
  /** Whether the pack is sealed: full or closed, no more puts. */
  sealed: boolean;
  /** Writes in flight (a full pack is sealed once its last one is done). */
  writing = 0;
  private fh: FileHandle | null;
  /** The O_DIRECT handle for slot writes (null when sealed, or where it cannot be had). */
  private direct: DirectHandle | null = null;
  private readers = 0;
  private dropped = false;
  /** Writes completed so far, and how many of them the last fdatasync covered. */
  private written = 0;
  private durable = 0;
  private syncing: Promise<void> | null = null;

  private constructor(seq: number, path: string, fh: FileHandle, slots: number, sealed: boolean) {
    this.seq = seq;
    this.path = path;
    this.fh = fh;
    this.slots = slots;
    this.sealed = sealed;
  }

  /** Opens a pack (creating it with `create`); its slot count is its whole slots. */
  static async open(
    seq: number,
    path: string,
    create: boolean,
    sealed: boolean,
  ): Promise<BlockPack> {
    const fh = await open(path, create ? 'wx+' : 'r+', 0o644);
    try {
      const { size } = await fh.stat();
      const pack = new BlockPack(seq, path, fh, Math.floor(size / SLOT_SIZE), sealed);
      if (!sealed) pack.direct = await DirectHandle.open(path);
      return pack;
    } catch (error) {
      await fh.close();
      throw error;
    }
  }

  private handle(): FileHandle {
    if (this.fh === null) throw new Error(`block pack ${this.path} is closed`);
    return this.fh;
  }

  /** Reads slot `slot`'s header (null if the file ends first). */
  async header(slot: number): Promise<Buffer | null> {
    const buf = Buffer.alloc(HEADER_USED);
    const { bytesRead } = await this.handle().read(buf, 0, HEADER_USED, slot * SLOT_SIZE);
    return bytesRead === HEADER_USED ? buf : null;
  }

  /** Reads slot `slot`'s block into `into` (BLOCK_SIZE bytes); false if the file ends first. */
  async readInto(slot: number, into: Buffer): Promise<boolean> {
    this.readers++;
    try {
      let done = 0;
      while (done < BLOCK_SIZE) {
        const { bytesRead } = await this.handle().read(
          into,
          done,
          BLOCK_SIZE - done,
          slot * SLOT_SIZE + SLOT_HEADER + done,
        );
        if (bytesRead === 0) return false;
        done += bytesRead;
      }
      return true;
    } finally {
      this.readers--;
      if (this.readers === 0 && this.dropped) await this.closeHandle();
    }
  }

  /** Whether slot `slot` holds a whole block whose SHA-256 is its header's. */
  async verify(slot: number, digest: string, scratch: Buffer): Promise<boolean> {
    if (!(await this.readInto(slot, scratch))) return false;
    return createHash('sha256').update(scratch).digest('hex') === digest;
  }

  /** Voids slot `slot`'s header, so that no later open takes the slot for a block. */
  async clearHeader(slot: number): Promise<void> {
    await this.handle().write(Buffer.alloc(8), 0, 8, slot * SLOT_SIZE);
  }

  /** Reserves the next slot. */
  reserve(): number {
    return this.slots++;
  }

  /** Writes a block into its reserved slot and resolves once it is durable. */
  async write(slot: number, digest: string, time: number, data: Buffer): Promise<void> {
    this.writing++;
    try {
      const at = slot * SLOT_SIZE;
      const direct = await writeThrough(
        this.handle(),
        this.direct,
        [encodeHeader(digest, time), data],
        at,
      );
      this.written++;
      // Direct writes run one at a time: let the ones queued behind this one
      // finish first, so that one fdatasync covers the batch (group commit).
      if (direct > 0) await this.direct?.settled();
      await this.flush(this.written);
    } finally {
      this.writing--;
    }
  }

  /** Resolves once at least `count` completed writes are covered by a fdatasync. */
  private async flush(count: number): Promise<void> {
    while (this.durable < count) {
      if (this.syncing === null) {
        const covers = this.written;
        this.syncing = this.handle()
          .datasync()
          .then(() => {
            this.durable = Math.max(this.durable, covers);
          })
          .finally(() => {
            this.syncing = null;
          });
      }
      await this.syncing;
    }
  }

  /** Closes the direct handle once no more puts come (the pack is being sealed). */
  async endPuts(): Promise<void> {
    const direct = this.direct;
    this.direct = null;
    await direct?.close();
  }

  /** Makes every completed write durable. */
  async sync(): Promise<void> {
    await this.handle().datasync();
    this.durable = this.written;
  }

  /** Removes the pack file; its handle closes once the reads in flight are done. */
  async drop(): Promise<void> {
    this.dropped = true;
    await unlink(this.path).catch(() => {});
    if (this.readers === 0) await this.closeHandle();
  }

  private async closeHandle(): Promise<void> {
    const fh = this.fh;
    const direct = this.direct;
    this.fh = null;
    this.direct = null;
    await direct?.close().catch(() => {});
    await fh?.close();
  }

  async close(): Promise<void> {
    await this.closeHandle();
  }
}
