import { FerryError } from '../../../errors/index.js';
import type { Volume } from '../../volume.js';
import type { DirEntry, FsDriver, NodeKind, NodeStat } from '../fs-driver.js';
import type { Xattr } from '../xattr-list.js';
import { readXfsAttrs } from './attr-fork.js';

/**
 * A read-only XFS reader (v4 and v5 superblocks): inodes in every AG,
 * extent-list and B+tree data forks, short-form, block, leaf and node
 * directories (data blocks are scanned linearly; hash indexes are not
 * needed for reading), local and remote symlinks, and the attribute fork
 * (attr-fork.ts). All on-disk integers are
 * big-endian. Nothing is trusted: every offset, count and level is checked.
 */

interface Super {
  readonly blockSize: number;
  readonly dblocks: number;
  readonly agBlocks: number;
  readonly agCount: number;
  readonly agBlkLog: number;
  readonly inodeSize: number;
  readonly inoPBLog: number;
  readonly rootIno: bigint;
  readonly dirBlockSize: number;
  readonly v5: boolean;
  readonly ftype: boolean;
  readonly uuid: string;
  readonly label: string;
}

export interface XfsInode {
  readonly ino: bigint;
  readonly kind: NodeKind;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  /** Nanoseconds of the mtime (di_mtime's second word). */
  readonly mtimeNsec: number;
  readonly nlink: number;
  readonly size: number;
  readonly format: number;
  /** The data fork bytes inside the inode. */
  readonly fork: Buffer;
  readonly nextents: number;
  /** The attribute fork bytes inside the inode (empty when it has none: di_forkoff 0). */
  readonly attrFork: Buffer;
  /** The attribute fork's format (di_aformat: 1 local, 2 extents, 3 B+tree). */
  readonly aformat: number;
  /** Extents of the attribute fork (di_anextents). */
  readonly anextents: number;
}

/** One fork of an inode, as the extent mappers read it. */
interface Fork {
  readonly ino: bigint;
  readonly format: number;
  readonly bytes: Buffer;
  readonly nextents: number;
}

interface Extent {
  readonly off: number;
  readonly block: number;
  readonly count: number;
  readonly unwritten: boolean;
}

const MAX_EXTENTS = 1_000_000;
const MAX_BTREE_LEVEL = 8;
const MAX_DIR_BYTES = 64 * 1024 * 1024;
const MAX_INODE_CACHE = 4096;
/** Directory data blocks live below this logical byte offset; leaf and free blocks above it. */
const DIR_LEAF_OFFSET = 2 ** 35;

function corrupt(message: string, details: Record<string, number | string> = {}): FerryError {
  return new FerryError('FERRY_FS_CORRUPT', `Cannot read XFS filesystem: ${message}`, { details });
}

function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Parses and checks an XFS superblock; null when the magic is absent. */
export function parseXfsSuper(sb: Buffer, volumeSize: number): Super | null {
  if (sb.length < 264 || sb.toString('latin1', 0, 4) !== 'XFSB') return null;
  const blockSize = sb.readUInt32BE(4);
  const blockLog = sb[120]!;
  if (blockLog < 9 || blockLog > 16 || blockSize !== 2 ** blockLog)
    throw corrupt('the block size is invalid', { blockSize });
  const dblocksBig = sb.readBigUInt64BE(8);
  const agBlocks = sb.readUInt32BE(84);
  const agCount = sb.readUInt32BE(88);
  const inodeSize = sb.readUInt16BE(104);
  const inodeLog = sb[122]!;
  const inoPBLog = sb[123]!;
  const agBlkLog = sb[124]!;
  const version = sb.readUInt16BE(100) & 0xf;
  const v5 = version === 5;
  if (version < 4 || version > 5) {
    throw new FerryError(
      'FERRY_FS_UNSUPPORTED',
      `Cannot read XFS filesystem: superblock version ${version}`,
      { details: { version } },
    );
  }
  if (inodeSize !== 2 ** inodeLog || inodeLog < 8 || inodeLog > 11 || inodeSize > blockSize) {
    throw corrupt('the inode size is invalid', { inodeSize });
  }
  if (inoPBLog !== blockLog - inodeLog) throw corrupt('inodes per block disagree with the sizes');
  if (
    agBlocks < 64 ||
    agCount === 0 ||
    agCount > 1_000_000 ||
    agBlkLog > 31 ||
    2 ** agBlkLog < agBlocks ||
    2 ** (agBlkLog - 1) >= agBlocks
  ) {
    throw corrupt('the allocation group geometry is invalid', { agBlocks, agCount, agBlkLog });
  }
  if (dblocksBig > BigInt(Number.MAX_SAFE_INTEGER) / BigInt(blockSize))
    throw corrupt('the block count is too large');
  const dblocks = Number(dblocksBig);
  if (dblocks > agBlocks * agCount) throw corrupt('the block count exceeds the allocation groups');
  const dirBlkLog = sb[192]!;
  if (dirBlkLog > 8 || blockSize * 2 ** dirBlkLog > 65536)
    throw corrupt('the directory block size is invalid');
  const incompat = v5 ? sb.readUInt32BE(216) : 0;
  // FTYPE 1, SPINODES 2, META_UUID 4, BIGTIME 8, NEEDSREPAIR 16 are readable; NREXT64 (32) and others are not.
  const unknown = incompat & ~0x1f;
  if (unknown !== 0) {
    throw new FerryError(
      'FERRY_FS_UNSUPPORTED',
      `Cannot read XFS filesystem: incompatible features 0x${unknown.toString(16)}`,
      {
        details: { incompat },
      },
    );
  }
  const features2 = sb.readUInt32BE(200);
  const ftype = v5 ? (incompat & 1) !== 0 : (features2 & 0x200) !== 0;
  const label = sb.toString('latin1', 108, 120).replace(/\0.*$/s, '');
  void volumeSize;
  return {
    blockSize,
    dblocks,
    agBlocks,
    agCount,
    agBlkLog,
    inodeSize,
    inoPBLog,
    rootIno: sb.readBigUInt64BE(56),
    dirBlockSize: blockSize * 2 ** dirBlkLog,
    v5,
    ftype,
    uuid: uuidString(sb.subarray(32, 48)),
    label,
  };
}

function kindOf(mode: number): NodeKind {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    default:
      return 'other';
  }
}

/** Seconds before the epoch where bigtime timestamps (nanoseconds, unsigned) start: 1901-12-13. */
const BIGTIME_EPOCH_OFFSET = 2n ** 31n;

/** di_mtime: signed seconds and nanoseconds, or with bigtime (di_flags2 bit 3) one 64-bit count of nanoseconds. */
function mtimeOf(b: Buffer, version: number): { mtime: number; mtimeNsec: number } {
  if (version === 3 && (b.readBigUInt64BE(120) & 0x8n) !== 0n) {
    const ns = b.readBigUInt64BE(40) - BIGTIME_EPOCH_OFFSET * 1_000_000_000n;
    const sec = ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n);
    return { mtime: Number(sec), mtimeNsec: Number(ns - sec * 1_000_000_000n) };
  }
  return { mtime: b.readInt32BE(40), mtimeNsec: Math.min(999_999_999, b.readUInt32BE(44)) };
}

/** Devices, fifos and sockets: XFS keeps a device number as major << 18 | minor in the data fork. */
function specialOf(i: XfsInode): Pick<NodeStat, 'special' | 'rdev'> {
  switch (i.mode & 0o170000) {
    case 0o010000:
      return { special: 'fifo' };
    case 0o140000:
      return { special: 'socket' };
    case 0o020000:
    case 0o060000: {
      const special = (i.mode & 0o170000) === 0o020000 ? 'char' : 'block';
      if (i.format !== 0 || i.fork.length < 4) return { special };
      const dev = i.fork.readUInt32BE(0);
      return { special, rdev: { major: dev >>> 18, minor: dev & 0x3ffff } };
    }
    default:
      return {};
  }
}

export class XfsDriver implements FsDriver<bigint> {
  readonly type = 'xfs' as const;
  readonly caseInsensitive = false;
  readonly sb: Super;
  readonly #vol: Volume;
  readonly #inodes = new Map<bigint, XfsInode>();

  constructor(volume: Volume, sb: Super) {
    this.#vol = volume;
    this.sb = sb;
  }

  async root(): Promise<bigint> {
    return this.sb.rootIno;
  }

  async stat(ino: bigint): Promise<NodeStat> {
    const i = await this.inode(ino);
    return {
      kind: i.kind,
      size: i.size,
      mode: i.mode & 0o7777,
      uid: i.uid,
      gid: i.gid,
      mtime: i.mtime,
      mtimeNs: (BigInt(i.mtime) * 1_000_000_000n + BigInt(i.mtimeNsec)).toString(),
      links: i.nlink,
      ...specialOf(i),
    };
  }

  async lookup(dir: bigint, name: string): Promise<bigint | null> {
    let found: bigint | null = null;
    await this.#walkDir(dir, (n, ino) => {
      if (n === name) {
        found = ino;
        return false;
      }
      return true;
    });
    return found;
  }

  async readDir(dir: bigint, limit: number): Promise<DirEntry<bigint>[]> {
    const out: DirEntry<bigint>[] = [];
    await this.#walkDir(dir, (name, ino) => {
      out.push({ name, ref: ino });
      return out.length < limit;
    });
    return out;
  }

  async readFile(ino: bigint, offset: number, length: number): Promise<Buffer> {
    const i = await this.inode(ino);
    const end = Math.min(i.size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    if (i.format === 1) return Buffer.from(i.fork.subarray(offset, Math.min(end, i.fork.length)));
    return this.#readExtents(i, offset, end - offset);
  }

  async readLink(ino: bigint): Promise<string> {
    const i = await this.inode(ino);
    if (i.kind !== 'symlink') throw corrupt('not a symlink');
    if (i.size > 4096) throw corrupt('a symlink target is too long', { size: i.size });
    if (i.format === 1) return i.fork.toString('utf8', 0, Math.min(i.size, i.fork.length));
    // Remote symlink blocks carry a 56-byte header on v5 filesystems.
    const extents = await this.#extents(i);
    const parts: Buffer[] = [];
    let remaining = i.size;
    for (const e of extents) {
      for (let b = 0; b < e.count && remaining > 0; b++) {
        const blk = await this.#readBlocks(e.block + b, 1);
        // v5 blocks start with an "XSLM" header; mkfs.xfs -p (xfsprogs 6.1) writes them without one.
        const data = this.sb.v5 && blk.toString('latin1', 0, 4) === 'XSLM' ? blk.subarray(56) : blk;
        const take = Math.min(remaining, data.length);
        parts.push(data.subarray(0, take));
        remaining -= take;
      }
    }
    return Buffer.concat(parts).toString('utf8');
  }

  async readXattrs(ino: bigint): Promise<Xattr[]> {
    const i = await this.inode(ino);
    return readXfsAttrs({
      ino,
      v5: this.sb.v5,
      blockSize: this.sb.blockSize,
      format: i.aformat,
      fork: i.attrFork,
      extents: () =>
        this.#forkExtents({ ino, format: i.aformat, bytes: i.attrFork, nextents: i.anextents }),
      readBlock: (b) => this.#readBlocks(b, 1),
    });
  }

  /** Byte offset on the volume of an fsblock number (AG number in the high bits). */
  #blockOffset(fsblock: number): number {
    const agno = Math.floor(fsblock / 2 ** this.sb.agBlkLog);
    const agbno = fsblock % 2 ** this.sb.agBlkLog;
    if (agno >= this.sb.agCount || agbno >= this.sb.agBlocks)
      throw corrupt('a block number lies outside the allocation groups', { fsblock });
    const off = (agno * this.sb.agBlocks + agbno) * this.sb.blockSize;
    if (off + this.sb.blockSize > this.#vol.size)
      throw corrupt('a block lies past the end of the volume', { fsblock });
    return off;
  }

  async #readBlocks(fsblock: number, count: number): Promise<Buffer> {
    const off = this.#blockOffset(fsblock);
    const len = count * this.sb.blockSize;
    // Contiguous fsblocks in one AG are contiguous on disk.
    this.#blockOffset(fsblock + count - 1);
    return this.#vol.read(off, len);
  }

  async inode(ino: bigint): Promise<XfsInode> {
    const cached = this.#inodes.get(ino);
    if (cached !== undefined) return cached;
    const sb = this.sb;
    const inoLog = BigInt(sb.inoPBLog);
    const agShift = BigInt(sb.agBlkLog) + inoLog;
    const agno = Number(ino >> agShift);
    const agbno = Number((ino >> inoLog) & ((1n << BigInt(sb.agBlkLog)) - 1n));
    const idx = Number(ino & ((1n << inoLog) - 1n));
    if (agno >= sb.agCount || agbno >= sb.agBlocks)
      throw corrupt('an inode number is out of range', { ino: ino.toString() });
    const off = (agno * sb.agBlocks + agbno) * sb.blockSize + idx * sb.inodeSize;
    if (off + sb.inodeSize > this.#vol.size)
      throw corrupt('an inode lies past the end of the volume', { ino: ino.toString() });
    const b = await this.#vol.read(off, sb.inodeSize);
    if (b.readUInt16BE(0) !== 0x494e)
      throw corrupt('an inode has a bad magic', { ino: ino.toString() });
    const version = b[4]!;
    if (version < 1 || version > 3 || (sb.v5 && version !== 3))
      throw corrupt('an inode has a bad version', { ino: ino.toString() });
    const core = version === 3 ? 176 : 100;
    const mode = b.readUInt16BE(2);
    const format = b[5]!;
    const sizeBig = b.readBigUInt64BE(56);
    if (sizeBig > BigInt(Number.MAX_SAFE_INTEGER))
      throw corrupt('an inode size is too large', { ino: ino.toString() });
    const forkoff = b[82]!;
    const forkEnd = forkoff === 0 ? sb.inodeSize : core + forkoff * 8;
    if (forkEnd > sb.inodeSize || forkEnd < core)
      throw corrupt('an inode fork offset is invalid', { ino: ino.toString() });
    if (version === 3 && (b.readBigUInt64BE(120) & 0x10n) !== 0n) {
      throw new FerryError(
        'FERRY_FS_UNSUPPORTED',
        'Cannot read XFS inode: large extent counts (nrext64)',
        { details: { ino: ino.toString() } },
      );
    }
    const node: XfsInode = {
      ino,
      kind: kindOf(mode),
      mode,
      uid: b.readUInt32BE(8),
      gid: b.readUInt32BE(12),
      ...mtimeOf(b, version),
      nlink: version === 1 ? b.readUInt16BE(6) : b.readUInt32BE(16),
      size: Number(sizeBig),
      format,
      fork: Buffer.from(b.subarray(core, forkEnd)),
      nextents: b.readUInt32BE(76),
      attrFork: forkoff === 0 ? Buffer.alloc(0) : Buffer.from(b.subarray(forkEnd)),
      aformat: forkoff === 0 ? 0 : b[83]!,
      anextents: b.readUInt16BE(80),
    };
    if (format > 3)
      throw corrupt('an inode has an unknown fork format', { ino: ino.toString(), format });
    if (this.#inodes.size >= MAX_INODE_CACHE)
      this.#inodes.delete(this.#inodes.keys().next().value!);
    this.#inodes.set(ino, node);
    return node;
  }

  static #parseExtent(b: Buffer, at: number): Extent {
    const hi = b.readBigUInt64BE(at);
    const lo = b.readBigUInt64BE(at + 8);
    return {
      unwritten: hi >> 63n === 1n,
      off: Number((hi & 0x7fffffffffffffffn) >> 9n),
      block: Number(((hi & 0x1ffn) << 43n) | (lo >> 21n)),
      count: Number(lo & 0x1fffffn),
    };
  }

  /** The extent map of an inode's data fork, sorted and checked for overlaps. */
  #extents(i: XfsInode): Promise<Extent[]> {
    return this.#forkExtents({ ino: i.ino, format: i.format, bytes: i.fork, nextents: i.nextents });
  }

  /** The extent map of a fork (data or attribute), sorted and checked for overlaps. */
  async #forkExtents(i: Fork): Promise<Extent[]> {
    let out: Extent[] = [];
    if (i.format === 2) {
      const n = i.nextents;
      if (n * 16 > i.bytes.length)
        throw corrupt('an inode claims more extents than fit in it', { ino: i.ino.toString() });
      for (let k = 0; k < n; k++) out.push(XfsDriver.#parseExtent(i.bytes, k * 16));
    } else if (i.format === 3) {
      out = await this.#btreeExtents(i);
    } else {
      return [];
    }
    let lastEnd = 0;
    for (const e of out) {
      if (e.count === 0 || e.off < lastEnd)
        throw corrupt('extents overlap or are out of order', { ino: i.ino.toString() });
      lastEnd = e.off + e.count;
    }
    return out;
  }

  async #btreeExtents(i: Fork): Promise<Extent[]> {
    const f = i.bytes;
    if (f.length < 4) throw corrupt('a B+tree root is truncated');
    const level = f.readUInt16BE(0);
    const numrecs = f.readUInt16BE(2);
    const maxrecs = Math.floor((f.length - 4) / 16);
    if (level === 0 || level > MAX_BTREE_LEVEL || numrecs === 0 || numrecs > maxrecs) {
      throw corrupt('a B+tree root is invalid', { ino: i.ino.toString(), level, numrecs });
    }
    const ptrs: number[] = [];
    for (let k = 0; k < numrecs; k++) {
      const p = f.readBigUInt64BE(4 + maxrecs * 8 + k * 8);
      ptrs.push(Number(p));
    }
    const out: Extent[] = [];
    const visited = new Set<number>();
    const hdr = this.sb.v5 ? 72 : 24;
    const walk = async (block: number, expectLevel: number): Promise<void> => {
      if (visited.has(block)) throw corrupt('a B+tree block is referenced twice', { block });
      visited.add(block);
      const b = await this.#readBlocks(block, 1);
      const magic = b.toString('latin1', 0, 4);
      if (magic !== (this.sb.v5 ? 'BMA3' : 'BMAP'))
        throw corrupt('a B+tree block has a bad magic', { block });
      const lvl = b.readUInt16BE(4);
      const n = b.readUInt16BE(6);
      if (lvl !== expectLevel) throw corrupt('a B+tree block is at the wrong level', { block });
      if (lvl === 0) {
        if (hdr + n * 16 > b.length) throw corrupt('a B+tree leaf is overfull', { block });
        for (let k = 0; k < n; k++) {
          out.push(XfsDriver.#parseExtent(b, hdr + k * 16));
          if (out.length > MAX_EXTENTS)
            throw new FerryError(
              'FERRY_FS_LIMIT',
              'Cannot read XFS file: more than a million extents',
            );
        }
        return;
      }
      const max = Math.floor((b.length - hdr) / 16);
      if (n === 0 || n > max) throw corrupt('a B+tree node is invalid', { block });
      for (let k = 0; k < n; k++)
        await walk(Number(b.readBigUInt64BE(hdr + max * 8 + k * 8)), lvl - 1);
    };
    for (const p of ptrs) await walk(p, level - 1);
    out.sort((a, b) => a.off - b.off);
    return out;
  }

  async #readExtents(i: XfsInode, offset: number, length: number): Promise<Buffer> {
    const bs = this.sb.blockSize;
    const out = Buffer.alloc(length);
    for (const e of await this.#extents(i)) {
      const eStart = e.off * bs;
      const eEnd = (e.off + e.count) * bs;
      const from = Math.max(eStart, offset);
      const to = Math.min(eEnd, offset + length);
      if (from >= to || e.unwritten) continue;
      const firstBlock = Math.floor((from - eStart) / bs);
      const lastBlock = Math.ceil((to - eStart) / bs);
      const data = await this.#readBlocks(e.block + firstBlock, lastBlock - firstBlock);
      data.copy(out, from - offset, from - eStart - firstBlock * bs, to - eStart - firstBlock * bs);
    }
    return out;
  }

  /** Calls `fn` for each entry (without "." and ".."); stops when it returns false. */
  async #walkDir(dirIno: bigint, fn: (name: string, ino: bigint) => boolean): Promise<void> {
    const d = await this.inode(dirIno);
    if (d.kind !== 'dir') return;
    if (d.format === 1) {
      this.#shortform(d, fn);
      return;
    }
    const dbs = this.sb.dirBlockSize;
    const bs = this.sb.blockSize;
    const perDirBlock = dbs / bs;
    let bytes = 0;
    for (const e of await this.#extents(d)) {
      if (e.off * bs >= DIR_LEAF_OFFSET) break;
      for (let b = 0; b + perDirBlock <= e.count; b += perDirBlock) {
        if (e.unwritten) continue;
        bytes += dbs;
        if (bytes > MAX_DIR_BYTES)
          throw new FerryError(
            'FERRY_FS_LIMIT',
            'Cannot read XFS directory: it is larger than 64 MiB',
          );
        const blk = await this.#readBlocks(e.block + b, perDirBlock);
        if (!this.#dataBlock(blk, fn)) return;
      }
    }
  }

  #shortform(d: XfsInode, fn: (name: string, ino: bigint) => boolean): void {
    const f = d.fork;
    if (f.length < 6) throw corrupt('a short-form directory is truncated');
    const count = f[0]!;
    const i8 = f[1]!;
    const inoLen = i8 > 0 ? 8 : 4;
    let p = 2 + inoLen;
    for (let k = 0; k < count; k++) {
      if (p + 3 > f.length) throw corrupt('a short-form directory entry is truncated');
      const len = f[p]!;
      p += 3;
      if (len === 0 || p + len + (this.sb.ftype ? 1 : 0) + inoLen > f.length)
        throw corrupt('a short-form directory entry is invalid');
      const name = f.toString('utf8', p, p + len);
      p += len + (this.sb.ftype ? 1 : 0);
      const ino = inoLen === 8 ? f.readBigUInt64BE(p) : BigInt(f.readUInt32BE(p));
      p += inoLen;
      if (!fn(name, ino)) return;
    }
  }

  /** Parses one directory data block; false when `fn` asked to stop. */
  #dataBlock(blk: Buffer, fn: (name: string, ino: bigint) => boolean): boolean {
    const magic = blk.toString('latin1', 0, 4);
    const v5 = this.sb.v5;
    const isBlockForm = magic === (v5 ? 'XDB3' : 'XD2B');
    if (!isBlockForm && magic !== (v5 ? 'XDD3' : 'XD2D'))
      throw corrupt('a directory block has a bad magic', { magic });
    let end = blk.length;
    if (isBlockForm) {
      const count = blk.readUInt32BE(blk.length - 8);
      end = blk.length - 8 - count * 8;
      if (end < 0) throw corrupt('a directory block tail is invalid');
    }
    let p = v5 ? 64 : 16;
    while (p + 8 <= end) {
      if (blk.readUInt16BE(p) === 0xffff) {
        const len = blk.readUInt16BE(p + 2);
        if (len < 8 || len % 8 !== 0 || p + len > end)
          throw corrupt('a free directory entry is invalid');
        p += len;
        continue;
      }
      const ino = blk.readBigUInt64BE(p);
      const nameLen = blk[p + 8]!;
      const entLen = Math.ceil((8 + 1 + nameLen + (this.sb.ftype ? 1 : 0) + 2) / 8) * 8;
      if (nameLen === 0 || p + entLen > end) throw corrupt('a directory entry is invalid');
      const name = blk.toString('utf8', p + 9, p + 9 + nameLen);
      p += entLen;
      if (name === '.' || name === '..') continue;
      if (!fn(name, ino)) return false;
    }
    return true;
  }
}

/** Opens XFS on a volume, or null when the superblock magic is absent. */
export async function openXfs(volume: Volume): Promise<XfsDriver | null> {
  if (volume.size < 512) return null;
  const sb = parseXfsSuper(await volume.read(0, 512), volume.size);
  return sb === null ? null : new XfsDriver(volume, sb);
}
