import { FerryError } from '../../../errors/index.js';
import type { Volume } from '../../volume.js';
import type { DirEntry, FsDriver, NodeKind, NodeStat } from '../fs-driver.js';
import { FS_LIMITS } from '../fs-tree.js';
import type { Xattr, XattrList } from '../xattr-list.js';
import { mapBlockMap } from './block-map.js';
import type { BlockRun, MapContext } from './block-run.js';
import { ByteBudgetCache } from './byte-budget-cache.js';
import { type DirentFormat, direntKind, parseDirents, type RawDirent } from './dirent.js';
import { mapExtents } from './extents.js';
import {
  BG_INODE_UNINIT,
  descriptorLocation,
  type GroupDescriptor,
  parseGroupDescriptor,
} from './group-descriptors.js';
import { type ExtInode, I_BLOCK_SIZE, INODE_FLAGS, inlineBytes, parseInode } from './inode.js';
import {
  type ExtSuperblock,
  hasExtMagic,
  INCOMPAT,
  parseExtSuperblock,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
} from './superblock.js';
import { readExtXattrs } from './xattrs.js';

/** The root directory's inode number. */
export const EXT_ROOT_INODE = 2;

/** Caps and cache budgets of the ext reader. */
export const EXT_LIMITS = {
  /** Bytes one readFile call may return. */
  maxReadBytes: 64 * 1024 * 1024,
  /** Largest directory (i_size) read. */
  maxDirBytes: 64 * 1024 * 1024,
  /** Directory bytes read at once while scanning a directory. */
  dirChunkBytes: 256 * 1024,
  /** Directories up to this size are indexed in memory on first lookup. */
  indexedDirBytes: 1024 * 1024,
  /** Metadata blocks cached: group descriptors, extent tree nodes, indirect blocks. */
  metadataCacheBytes: 8 * 1024 * 1024,
  inodeCacheBytes: 2 * 1024 * 1024,
  dirIndexCacheBytes: 8 * 1024 * 1024,
  /** Volume reads in flight for one file read. */
  readConcurrency: 8,
} as const;

/** What a non-file, non-directory, non-symlink inode is, and its device numbers (i_block[0], or [1] for the new encoding). */
function specialOf(inode: ExtInode): Pick<NodeStat, 'special' | 'rdev'> {
  switch (inode.mode & 0xf000) {
    case 0x1000:
      return { special: 'fifo' };
    case 0xc000:
      return { special: 'socket' };
    case 0x2000:
    case 0x6000: {
      const special = (inode.mode & 0xf000) === 0x2000 ? 'char' : 'block';
      const old = inode.iblock.readUInt32LE(0);
      if (old !== 0) return { special, rdev: { major: (old >> 8) & 0xff, minor: old & 0xff } };
      const dev = inode.iblock.readUInt32LE(4);
      return {
        special,
        rdev: { major: (dev & 0xfff00) >> 8, minor: (dev & 0xff) | ((dev >> 12) & 0xfff00) },
      };
    }
    default:
      return {};
  }
}

/** A directory entry with the kind its dirent records (null without the filetype feature). */
export interface ExtDirEntry extends DirEntry<number> {
  readonly kind: NodeKind | null;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/**
 * A read-only ext2/ext3/ext4 reader. References are inode numbers. Every
 * structure is checked against the superblock geometry before use; metadata
 * is cached within byte budgets; file data is never cached.
 */
export class ExtDriver implements FsDriver<number> {
  readonly type: 'ext2' | 'ext3' | 'ext4';
  readonly caseInsensitive = false;
  readonly superblock: ExtSuperblock;
  /** Things worth reporting that did not stop the filesystem from opening. */
  readonly warnings: readonly string[];
  readonly #vol: Volume;
  readonly #fmt: DirentFormat;
  readonly #meta = new ByteBudgetCache<number, Buffer>(EXT_LIMITS.metadataCacheBytes);
  readonly #inodes = new ByteBudgetCache<number, ExtInode>(EXT_LIMITS.inodeCacheBytes);
  readonly #dirIndex = new ByteBudgetCache<number, Map<string, number>>(
    EXT_LIMITS.dirIndexCacheBytes,
  );

  constructor(volume: Volume, sb: ExtSuperblock) {
    this.#vol = volume;
    this.superblock = sb;
    this.type = sb.type;
    this.warnings = sb.warnings;
    this.#fmt = {
      filetype: (sb.incompat & INCOMPAT.filetype) !== 0,
      blockSize: sb.blockSize,
      inodesCount: sb.inodesCount,
    };
  }

  async root(): Promise<number> {
    return EXT_ROOT_INODE;
  }

  async stat(ref: number): Promise<NodeStat> {
    const inode = await this.inode(ref);
    return {
      kind: inode.kind,
      size: inode.size,
      mode: inode.mode & 0o7777,
      uid: inode.uid,
      gid: inode.gid,
      mtime: inode.mtime,
      mtimeNs: (BigInt(inode.mtime) * 1_000_000_000n + BigInt(inode.mtimeNsec)).toString(),
      links: inode.links,
      ...specialOf(inode),
    };
  }

  async lookup(dir: number, name: string): Promise<number | null> {
    const inode = await this.#dirInode(dir);
    const want = Buffer.from(name, 'utf8');
    let found: number | null = null;
    if (inode.inlineTail === null && inode.size <= EXT_LIMITS.indexedDirBytes) {
      found = (await this.#indexDir(inode)).get(want.toString('latin1')) ?? null;
    } else {
      await this.#scanDir(inode, (e) => {
        if (!e.name.equals(want)) return false;
        found = e.ino;
        return true;
      });
    }
    if (found === null && name.includes('\ufffd')) {
      // A name readDir decoded lossily (its bytes are not UTF-8): match it the same way.
      await this.#scanDir(inode, (e) => {
        if (e.name.toString('utf8') !== name) return false;
        found = e.ino;
        return true;
      });
    }
    if (
      found === null &&
      inode.flags & INODE_FLAGS.casefold &&
      this.superblock.incompat & INCOMPAT.casefold
    ) {
      // Casefolded directory: names match case-insensitively (approximated by NFD + lower case).
      const fold = (s: string): string => s.normalize('NFD').toLowerCase();
      const key = fold(name);
      await this.#scanDir(inode, (e) => {
        if (fold(e.name.toString('utf8')) !== key) return false;
        found = e.ino;
        return true;
      });
    }
    return found;
  }

  async readDir(dir: number, limit: number): Promise<ExtDirEntry[]> {
    const inode = await this.#dirInode(dir);
    const out: ExtDirEntry[] = [];
    if (limit <= 0) return out;
    await this.#scanDir(inode, (e) => {
      if (e.name.equals(DOT) || e.name.equals(DOTDOT)) return false;
      out.push({ name: e.name.toString('utf8'), ref: e.ino, kind: direntKind(e.fileType) });
      return out.length >= limit;
    });
    return out;
  }

  async readFile(ref: number, offset: number, length: number): Promise<Buffer> {
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0
    ) {
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot read ext inode ${ref}: invalid range ${offset}+${length}`,
        {
          details: { inode: ref, offset, length },
        },
      );
    }
    if (length > EXT_LIMITS.maxReadBytes) {
      throw new FerryError(
        'FERRY_FS_LIMIT',
        `Cannot read ext inode ${ref}: ${length} bytes at once is too many`,
        {
          details: { inode: ref, length, max: EXT_LIMITS.maxReadBytes },
        },
      );
    }
    const inode = await this.inode(ref);
    if (inode.kind !== 'file') {
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot read ext inode ${ref}: it is not a regular file`,
        {
          details: { inode: ref },
        },
      );
    }
    this.#refuseEncrypted(inode);
    const end = Math.min(offset + length, inode.size);
    if (offset >= end) return Buffer.alloc(0);
    return this.#readData(inode, offset, end - offset);
  }

  async readLink(ref: number): Promise<string> {
    const inode = await this.inode(ref);
    if (inode.kind !== 'symlink') {
      throw new FerryError('FERRY_USAGE', `Cannot read ext inode ${ref}: it is not a symlink`, {
        details: { inode: ref },
      });
    }
    this.#refuseEncrypted(inode);
    if (inode.size === 0) throw this.#corrupt(ref, 'the symlink is empty');
    if (inode.size > FS_LIMITS.maxLinkBytes) {
      throw new FerryError(
        'FERRY_FS_LIMIT',
        `Cannot read ext inode ${ref}: its symlink target is ${inode.size} bytes`,
        {
          details: { inode: ref, size: inode.size },
        },
      );
    }
    let target: Buffer;
    if (inode.inlineTail !== null) target = inlineBytes(inode).subarray(0, inode.size);
    else if (inode.size < I_BLOCK_SIZE && inode.dataSectors === 0)
      target = inode.iblock.subarray(0, inode.size);
    else target = await this.#readData(inode, 0, inode.size);
    return target.toString('utf8');
  }

  async readXattrs(ref: number): Promise<Xattr[]> {
    const inode = await this.inode(ref);
    return readExtXattrs(
      {
        sb: this.superblock,
        readBlock: (b) => this.#metaBlock(b),
        readValueInode: (ino, size, list) => this.#readValueInode(ino, size, list),
      },
      inode,
    );
  }

  /** The value an ea_inode holds: a regular file flagged EA_INODE whose size is the value's. */
  async #readValueInode(ino: number, size: number, list: XattrList): Promise<Buffer> {
    const inode = await this.inode(ino);
    if (inode.kind !== 'file' || (inode.flags & INODE_FLAGS.eaInode) === 0)
      throw list.error('FERRY_FS_CORRUPT', `a value inode (${ino}) is not an attribute inode`, {
        valueInode: ino,
      });
    if (inode.size !== size)
      throw list.error(
        'FERRY_FS_CORRUPT',
        `a value inode (${ino}) holds ${inode.size} bytes, not ${size}`,
        { valueInode: ino, size: inode.size, expected: size },
      );
    return this.#readData(inode, 0, size);
  }

  /** The decoded inode `ino` (cached). */
  async inode(ino: number): Promise<ExtInode> {
    const cached = this.#inodes.get(ino);
    if (cached !== undefined) return cached;
    const sb = this.superblock;
    if (!Number.isSafeInteger(ino) || ino < 1 || ino > sb.inodesCount) {
      throw this.#corrupt(ino, 'the inode number is out of range');
    }
    const group = Math.floor((ino - 1) / sb.inodesPerGroup);
    const index = (ino - 1) % sb.inodesPerGroup;
    const gd = await this.#group(group);
    if (sb.groupCsum && gd.flags & BG_INODE_UNINIT) {
      throw this.#corrupt(ino, 'it lies in a group whose inode table is not initialized', {
        group,
      });
    }
    const raw = await this.#read(gd.inodeTable * sb.blockSize + index * sb.inodeSize, sb.inodeSize);
    const inode = parseInode(sb, ino, raw);
    this.#inodes.set(
      ino,
      inode,
      256 + (inode.inlineTail?.length ?? 0) + (inode.ibodyXattrs?.length ?? 0),
    );
    return inode;
  }

  #corrupt(ino: number, message: string, details: Record<string, number> = {}): FerryError {
    return new FerryError('FERRY_FS_CORRUPT', `Cannot read ext inode ${ino}: ${message}`, {
      details: { inode: ino, ...details },
    });
  }

  #refuseEncrypted(inode: ExtInode): void {
    if (inode.flags & INODE_FLAGS.encrypt) {
      throw new FerryError(
        'FERRY_FS_UNSUPPORTED',
        `Cannot read ext inode ${inode.ino}: it is encrypted (encrypt)`,
        {
          details: { inode: inode.ino, feature: 'encrypt' },
        },
      );
    }
  }

  /** Reads volume bytes, refusing ranges past the end of the volume with a filesystem error. */
  async #read(offset: number, length: number): Promise<Buffer> {
    if (offset + length > this.#vol.size) {
      throw new FerryError(
        'FERRY_FS_CORRUPT',
        `Cannot read ext filesystem bytes ${offset}+${length}: they lie past the end of the volume (${this.#vol.size} bytes); the image may be truncated`,
        { details: { offset, length, volumeSize: this.#vol.size } },
      );
    }
    return this.#vol.read(offset, length);
  }

  async #metaBlock(block: number): Promise<Buffer> {
    const cached = this.#meta.get(block);
    if (cached !== undefined) return cached;
    const sb = this.superblock;
    if (block >= sb.blocksCount) {
      throw new FerryError(
        'FERRY_FS_CORRUPT',
        `Cannot read ext block ${block}: it lies outside the filesystem`,
        {
          details: { block, blocksCount: sb.blocksCount },
        },
      );
    }
    const buf = await this.#read(block * sb.blockSize, sb.blockSize);
    this.#meta.set(block, buf, buf.length);
    return buf;
  }

  async #group(group: number): Promise<GroupDescriptor> {
    const sb = this.superblock;
    const loc = descriptorLocation(sb, group);
    const block = await this.#metaBlock(loc.block);
    return parseGroupDescriptor(sb, group, block.subarray(loc.offset, loc.offset + sb.descSize));
  }

  #map(inode: ExtInode, first: number, count: number): Promise<BlockRun[]> {
    const ctx: MapContext = {
      sb: this.superblock,
      ino: inode.ino,
      readBlock: (b) => this.#metaBlock(b),
    };
    return inode.flags & INODE_FLAGS.extents
      ? mapExtents(ctx, inode.iblock, first, count)
      : mapBlockMap(ctx, inode.iblock, first, count);
  }

  /** Reads [offset, offset+length) of an inode's data (inside its size); holes read as zeros. */
  async #readData(inode: ExtInode, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    if (inode.inlineTail !== null) {
      const all = inlineBytes(inode);
      const out = Buffer.alloc(length);
      all.copy(out, 0, Math.min(offset, all.length), Math.min(offset + length, all.length));
      return out;
    }
    const bs = this.superblock.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + length - 1) / bs);
    const runs = await this.#map(inode, first, last - first + 1);
    const out = Buffer.alloc(length);
    const jobs: Array<() => Promise<void>> = [];
    for (const run of runs) {
      const runStart = run.logical * bs;
      const from = Math.max(runStart, offset);
      const to = Math.min(runStart + run.count * bs, offset + length);
      if (from >= to) continue;
      jobs.push(async () => {
        const data = await this.#read(run.physical * bs + (from - runStart), to - from);
        data.copy(out, from - offset);
      });
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) await jobs[next++]!();
    };
    await Promise.all(
      Array.from({ length: Math.min(EXT_LIMITS.readConcurrency, jobs.length) }, worker),
    );
    return out;
  }

  async #dirInode(ref: number): Promise<ExtInode> {
    const inode = await this.inode(ref);
    if (inode.kind !== 'dir') {
      throw new FerryError(
        'FERRY_FS_NOT_A_DIRECTORY',
        `Cannot list ext inode ${ref}: it is not a directory`,
        {
          details: { inode: ref },
        },
      );
    }
    this.#refuseEncrypted(inode);
    return inode;
  }

  /** Name (as latin1 of its bytes) to inode, for a directory small enough to index. */
  async #indexDir(inode: ExtInode): Promise<Map<string, number>> {
    const cached = this.#dirIndex.get(inode.ino);
    if (cached !== undefined) return cached;
    const index = new Map<string, number>();
    let bytes = 64;
    await this.#scanDir(inode, (e) => {
      const key = e.name.toString('latin1');
      if (!index.has(key)) index.set(key, e.ino);
      bytes += 48 + 2 * key.length;
      return false;
    });
    this.#dirIndex.set(inode.ino, index, bytes);
    return index;
  }

  /**
   * Calls `visit` for each live entry of a directory (including "." and "..")
   * until it returns true. Reads at most maxDirBytes, a chunk at a time, and
   * refuses a directory that lists the same block twice.
   */
  async #scanDir(inode: ExtInode, visit: (e: RawDirent) => boolean): Promise<void> {
    const ino = inode.ino;
    if (inode.inlineTail !== null) {
      const parent = inode.iblock.readUInt32LE(0);
      if (parent === 0 || parent > this.superblock.inodesCount) {
        throw new FerryError(
          'FERRY_FS_CORRUPT',
          `Cannot read ext directory ${ino}: its parent inode is invalid`,
          {
            details: { directory: ino, parent },
          },
        );
      }
      if (visit({ ino: parent, name: DOTDOT, fileType: 2 })) return;
      if (parseDirents(ino, this.#fmt, inode.iblock, 4, I_BLOCK_SIZE, visit)) return;
      const tail = inode.inlineTail;
      if (tail.length > 0) parseDirents(ino, this.#fmt, tail, 0, tail.length, visit);
      return;
    }
    if (inode.size > EXT_LIMITS.maxDirBytes) {
      throw new FerryError(
        'FERRY_FS_LIMIT',
        `Cannot read ext directory ${ino}: it is ${inode.size} bytes`,
        {
          details: { directory: ino, size: inode.size, max: EXT_LIMITS.maxDirBytes },
        },
      );
    }
    const bs = this.superblock.blockSize;
    const blocks = Math.ceil(inode.size / bs);
    const chunk = Math.max(1, Math.floor(EXT_LIMITS.dirChunkBytes / bs));
    const seen = new Set<number>();
    for (let b = 0; b < blocks; b += chunk) {
      const runs = await this.#map(inode, b, Math.min(chunk, blocks - b));
      for (const run of runs) {
        for (let k = 0; k < run.count; k++) {
          const phys = run.physical + k;
          if (seen.has(phys)) {
            throw new FerryError(
              'FERRY_FS_CORRUPT',
              `Cannot read ext directory ${ino}: it uses block ${phys} twice`,
              {
                details: { directory: ino, block: phys },
              },
            );
          }
          seen.add(phys);
        }
        const data = await this.#read(run.physical * bs, run.count * bs);
        for (let k = 0; k < run.count; k++) {
          if (parseDirents(ino, this.#fmt, data, k * bs, (k + 1) * bs, visit)) return;
        }
      }
    }
  }
}

/**
 * Opens an ext2/ext3/ext4 filesystem read-only, or returns null when the
 * volume has no ext superblock magic. Refuses (FERRY_FS_UNSUPPORTED) a
 * filesystem whose incompatible features it cannot read, and
 * (FERRY_FS_CORRUPT) one whose geometry or root directory is broken.
 */
export async function openExt(volume: Volume): Promise<ExtDriver | null> {
  if (volume.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) return null;
  const raw = await volume.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
  if (!hasExtMagic(raw)) return null;
  const driver = new ExtDriver(volume, parseExtSuperblock(raw, volume.size));
  const root = await driver.inode(EXT_ROOT_INODE);
  if (root.kind !== 'dir') {
    throw new FerryError(
      'FERRY_FS_CORRUPT',
      'Cannot open ext filesystem: the root inode is not a directory',
      {
        details: { mode: root.mode },
      },
    );
  }
  return driver;
}
