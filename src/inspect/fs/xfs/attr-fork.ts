import {
  ACL_XATTR_ACCESS,
  ACL_XATTR_DEFAULT,
  XFS_ACL_NAMES,
  xfsAclMaxEntries,
  xfsAclToVfs,
} from '../posix-acl.js';
import { type Xattr, XattrList } from '../xattr-list.js';

/**
 * The attribute fork of an XFS inode: short-form attributes inside the
 * inode, or attribute blocks mapped by the fork's extents: one leaf at
 * logical block 0, or a dabtree whose node at block 0 leads to leaves.
 * Values live in the leaf entry (local) or in their own blocks (remote; on
 * v5 each remote block starts with an "XARM" header). All integers are
 * big-endian; every offset, count and level is checked.
 *
 * Namespaces: XFS_ATTR_ROOT is "trusted.", XFS_ATTR_SECURE "security.",
 * neither "user.". The POSIX ACLs XFS keeps as SGI_ACL_FILE and
 * SGI_ACL_DEFAULT in its root namespace become system.posix_acl_access and
 * system.posix_acl_default in the VFS form, which is what a directory
 * ingest of the mounted filesystem records (as root, llistxattr lists them
 * once more as trusted.SGI_ACL_*; ferry keeps one copy, the portable one).
 * Parent pointers and entries flagged incomplete are skipped, as the
 * kernel skips them. CRCs are not verified.
 */

/** What the reader needs from the driver. */
export interface AttrForkSource {
  readonly ino: bigint;
  readonly v5: boolean;
  readonly blockSize: number;
  /** di_aformat: 1 local, 2 extents, 3 B+tree (0: no attribute fork). */
  readonly format: number;
  /** The fork's bytes inside the inode. */
  readonly fork: Buffer;
  /** The fork's extent map (formats 2 and 3), sorted and checked by the driver. */
  extents(): Promise<ReadonlyArray<ForkExtent>>;
  /** Reads one filesystem block (bounds-checked by the driver). */
  readBlock(fsblock: number): Promise<Buffer>;
}

const FLAG_LOCAL = 0x01;
const FLAG_ROOT = 0x02;
const FLAG_SECURE = 0x04;
const FLAG_PARENT = 0x08;
const FLAG_INCOMPLETE = 0x80;

const LEAF_MAGIC_V4 = 0xfbee;
const LEAF_MAGIC_V5 = 0x3bee;
const NODE_MAGIC_V4 = 0xfebe;
const NODE_MAGIC_V5 = 0x3ebe;
const REMOTE_MAGIC = 0x5841524d; // "XARM"
const REMOTE_HEADER = 56;

/** Deepest dabtree XFS builds (XFS_DA_NODE_MAXDEPTH). */
const MAX_DEPTH = 5;
/** Bytes of attribute blocks read for one inode: the values' cap (128 × 64 KiB) twice over. */
const MAX_READ_BYTES = 16 * 1024 * 1024;

export async function readXfsAttrs(src: AttrForkSource): Promise<Xattr[]> {
  const list = new XattrList(`XFS inode ${src.ino}`);
  if (src.format === 0) return [];
  if (src.format === 1) shortform(src, list);
  else if (src.format === 2 || src.format === 3) await blocks(src, list);
  else
    throw list.error('FERRY_FS_CORRUPT', `its attribute fork has the unknown format ${src.format}`);
  return list.list();
}

/**
 * The Linux name of an attribute (with its namespace prefix; the ACL names
 * for SGI_ACL_*), or null for one Linux does not show.
 */
function linuxName(list: XattrList, flags: number, name: Buffer): string | null {
  if (flags & (FLAG_PARENT | FLAG_INCOMPLETE)) return null;
  if (name.length === 0) throw list.error('FERRY_FS_CORRUPT', 'an attribute has an empty name');
  const ns = flags & (FLAG_ROOT | FLAG_SECURE);
  const raw = name.toString('utf8');
  if (ns === (FLAG_ROOT | FLAG_SECURE))
    throw list.error('FERRY_FS_CORRUPT', `the attribute ${raw.slice(0, 80)} is in two namespaces`);
  if (ns === FLAG_ROOT) return XFS_ACL_NAMES[raw] ?? `trusted.${raw}`;
  return ns === FLAG_SECURE ? `security.${raw}` : `user.${raw}`;
}

/** Adds one attribute under its Linux name; ACL values turn into the VFS form. */
function add(src: AttrForkSource, list: XattrList, name: string, value: Buffer): void {
  if (name === ACL_XATTR_ACCESS || name === ACL_XATTR_DEFAULT) {
    const fail = (reason: string) => list.error('FERRY_FS_CORRUPT', reason);
    list.add(name, xfsAclToVfs(value, xfsAclMaxEntries(src.v5), fail));
  } else list.add(name, value);
}

/** Short-form attributes: a 4-byte header (total size, count), then name and value per entry. */
function shortform(src: AttrForkSource, list: XattrList): void {
  const f = src.fork;
  if (f.length < 4) throw list.error('FERRY_FS_CORRUPT', 'its short-form attributes are truncated');
  const total = f.readUInt16BE(0);
  const count = f[2]!;
  if (total < 4 || total > f.length)
    throw list.error('FERRY_FS_CORRUPT', `its short-form attributes claim ${total} bytes`, {
      total,
      fork: f.length,
    });
  let p = 4;
  for (let k = 0; k < count; k++) {
    if (p + 3 > total)
      throw list.error('FERRY_FS_CORRUPT', 'a short-form attribute entry is truncated');
    const nameLen = f[p]!;
    const valueLen = f[p + 1]!;
    const flags = f[p + 2]!;
    const end = p + 3 + nameLen + valueLen;
    if (end > total)
      throw list.error('FERRY_FS_CORRUPT', 'a short-form attribute entry overruns the fork');
    const name = linuxName(list, flags, f.subarray(p + 3, p + 3 + nameLen));
    if (name !== null) add(src, list, name, Buffer.from(f.subarray(p + 3 + nameLen, end)));
    p = end;
  }
}

type ForkExtent = { off: number; block: number; count: number; unwritten: boolean };

/** The extent holding logical block `lblk` (binary search: the extents are sorted and disjoint). */
function findExtent(extents: readonly ForkExtent[], lblk: number): ForkExtent | undefined {
  let lo = 0;
  let hi = extents.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const e = extents[mid]!;
    if (lblk < e.off) hi = mid - 1;
    else if (lblk >= e.off + e.count) lo = mid + 1;
    else return e;
  }
  return undefined;
}

/** Attribute blocks: a leaf or a dabtree at logical block 0 of the fork. */
async function blocks(src: AttrForkSource, list: XattrList): Promise<void> {
  const extents = await src.extents();
  if (extents.length === 0) return;
  const bs = src.blockSize;
  let read = 0;
  const readLogical = async (lblk: number): Promise<Buffer> => {
    read += bs;
    if (read > MAX_READ_BYTES)
      throw list.error('FERRY_FS_LIMIT', `its attribute blocks exceed ${MAX_READ_BYTES} bytes`);
    const e = findExtent(extents, lblk);
    if (e === undefined || e.unwritten)
      throw list.error('FERRY_FS_CORRUPT', `attribute block ${lblk} is not mapped`, {
        block: lblk,
      });
    const b = await src.readBlock(e.block + (lblk - e.off));
    if (b.length !== bs)
      throw list.error('FERRY_FS_CORRUPT', `attribute block ${lblk} is short`, { block: lblk });
    return b;
  };
  const leafMagic = src.v5 ? LEAF_MAGIC_V5 : LEAF_MAGIC_V4;
  const nodeMagic = src.v5 ? NODE_MAGIC_V5 : NODE_MAGIC_V4;
  const seen = new Set<number>();
  /** Visits the block `lblk` expected at `level` (null: the root, either kind). */
  const visit = async (lblk: number, level: number | null): Promise<void> => {
    if (seen.has(lblk))
      throw list.error('FERRY_FS_CORRUPT', `attribute block ${lblk} is reached twice`, {
        block: lblk,
      });
    seen.add(lblk);
    const b = await readLogical(lblk);
    const magic = b.readUInt16BE(8);
    if (magic === leafMagic && (level === null || level === 0)) {
      await leaf(src, list, b, readLogical);
      return;
    }
    if (magic !== nodeMagic)
      throw list.error(
        'FERRY_FS_CORRUPT',
        `attribute block ${lblk} has the magic 0x${magic.toString(16)}`,
        { block: lblk },
      );
    const hdr = src.v5 ? 64 : 16;
    const count = b.readUInt16BE(hdr - (src.v5 ? 8 : 4));
    const lvl = b.readUInt16BE(hdr - (src.v5 ? 6 : 2));
    if (lvl === 0 || lvl > MAX_DEPTH || (level !== null && lvl !== level))
      throw list.error('FERRY_FS_CORRUPT', `attribute node ${lblk} is at level ${lvl}`, {
        block: lblk,
      });
    if (count === 0 || hdr + count * 8 > bs)
      throw list.error('FERRY_FS_CORRUPT', `attribute node ${lblk} claims ${count} entries`, {
        block: lblk,
      });
    const children: number[] = [];
    for (let k = 0; k < count; k++) children.push(b.readUInt32BE(hdr + k * 8 + 4));
    for (const c of children) await visit(c, lvl - 1);
  };
  await visit(0, null);
}

/** One leaf block: a header, 8-byte entries (hash, name offset, flags), then names and values. */
async function leaf(
  src: AttrForkSource,
  list: XattrList,
  b: Buffer,
  readLogical: (lblk: number) => Promise<Buffer>,
): Promise<void> {
  const bs = src.blockSize;
  const hdr = src.v5 ? 80 : 32;
  const count = b.readUInt16BE(src.v5 ? 56 : 12);
  const names = hdr + count * 8;
  if (names > bs)
    throw list.error('FERRY_FS_CORRUPT', `an attribute leaf claims ${count} entries`, { count });
  for (let k = 0; k < count; k++) {
    const at = hdr + k * 8;
    const nameIdx = b.readUInt16BE(at + 4);
    const flags = b[at + 6]!;
    if (flags & FLAG_INCOMPLETE) continue;
    if (nameIdx < names || nameIdx >= bs)
      throw list.error('FERRY_FS_CORRUPT', 'an attribute leaf entry points outside its block', {
        nameIdx,
      });
    if (flags & FLAG_LOCAL) {
      if (nameIdx + 3 > bs)
        throw list.error('FERRY_FS_CORRUPT', 'an attribute leaf entry is truncated');
      const valueLen = b.readUInt16BE(nameIdx);
      const nameLen = b[nameIdx + 2]!;
      const end = nameIdx + 3 + nameLen + valueLen;
      if (end > bs) throw list.error('FERRY_FS_CORRUPT', 'an attribute value overruns its block');
      const name = linuxName(list, flags, b.subarray(nameIdx + 3, nameIdx + 3 + nameLen));
      if (name !== null) add(src, list, name, Buffer.from(b.subarray(nameIdx + 3 + nameLen, end)));
    } else {
      if (nameIdx + 9 > bs)
        throw list.error('FERRY_FS_CORRUPT', 'an attribute leaf entry is truncated');
      const valueBlk = b.readUInt32BE(nameIdx);
      const valueLen = b.readUInt32BE(nameIdx + 4);
      const nameLen = b[nameIdx + 8]!;
      if (nameIdx + 9 + nameLen > bs)
        throw list.error('FERRY_FS_CORRUPT', 'an attribute name overruns its block');
      const name = linuxName(list, flags, b.subarray(nameIdx + 9, nameIdx + 9 + nameLen));
      if (name === null) continue;
      list.checkValueSize(name, valueLen);
      add(src, list, name, await remoteValue(src, list, valueBlk, valueLen, readLogical));
    }
  }
}

/** A value kept in its own blocks, starting at logical block `first` of the fork. */
async function remoteValue(
  src: AttrForkSource,
  list: XattrList,
  first: number,
  length: number,
  readLogical: (lblk: number) => Promise<Buffer>,
): Promise<Buffer> {
  const bs = src.blockSize;
  const room = src.v5 ? bs - REMOTE_HEADER : bs;
  const out = Buffer.alloc(length);
  let done = 0;
  for (let k = 0; done < length; k++) {
    const b = await readLogical(first + k);
    const take = Math.min(room, length - done);
    if (src.v5) {
      const ok =
        b.readUInt32BE(0) === REMOTE_MAGIC &&
        b.readUInt32BE(4) === done &&
        b.readUInt32BE(8) === take &&
        b.readBigUInt64BE(32) === src.ino;
      if (!ok)
        throw list.error(
          'FERRY_FS_CORRUPT',
          `remote attribute block ${first + k} has a bad header`,
          { block: first + k },
        );
      b.copy(out, done, REMOTE_HEADER, REMOTE_HEADER + take);
    } else {
      b.copy(out, done, 0, take);
    }
    done += take;
  }
  return out;
}
