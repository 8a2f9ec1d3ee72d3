import { FerryError } from '../../errors/index.js';
import { ext4Crc, xattrBlockSeed } from './checksum.js';
import { BLOCK_SIZE, INODE_XATTR_SPACE, XATTR_MAGIC } from './constants.js';

/** An attribute as ext4 stores it: a name index, the rest of the name, the value. */
export interface Ext4Xattr {
  readonly index: number;
  readonly name: Buffer;
  readonly value: Buffer;
}

/** Name prefixes and their ext4 indexes; the ACL names are whole names with an empty rest. */
const WHOLE: ReadonlyMap<string, number> = new Map([
  ['system.posix_acl_access', 2],
  ['system.posix_acl_default', 3],
  ['system.richacl', 8],
]);
const PREFIXES: readonly [string, number][] = [
  ['user.', 1],
  ['trusted.', 4],
  ['security.', 6],
  ['system.', 7],
];

function limit(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_LIMIT', `Cannot write extended attributes: ${reason}`);
}

/**
 * POSIX ACLs come in the kernel's xattr form (version 2, 8-byte entries);
 * ext4 keeps its own compact form (version 1, 4-byte entries for the owner,
 * group, mask and other, 8 bytes for named users and groups).
 */
export function aclToExt4(vfs: Buffer): Buffer {
  if (vfs.length < 4 || (vfs.length - 4) % 8 !== 0 || vfs.readUInt32LE(0) !== 2)
    throw new FerryError(
      'FERRY_RENDER_INPUT',
      'Cannot write a POSIX ACL: the value is not a version 2 ACL in the kernel xattr form',
    );
  const parts: Buffer[] = [Buffer.from([1, 0, 0, 0])];
  for (let at = 4; at < vfs.length; at += 8) {
    const tag = vfs.readUInt16LE(at);
    const perm = vfs.readUInt16LE(at + 2);
    const named = tag === 0x02 || tag === 0x08;
    const e = Buffer.alloc(named ? 8 : 4);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(perm, 2);
    if (named) e.writeUInt32LE(vfs.readUInt32LE(at + 4), 4);
    parts.push(e);
  }
  return Buffer.concat(parts);
}

/** Manifest xattrs (name -> base64) as ext4 entries, sorted the way the kernel keeps a block. */
export function toExt4Xattrs(xattrs: Readonly<Record<string, string>> | undefined): Ext4Xattr[] {
  if (xattrs === undefined) return [];
  const out: Ext4Xattr[] = [];
  for (const [full, b64] of Object.entries(xattrs)) {
    let value: Buffer = Buffer.from(b64, 'base64');
    const whole = WHOLE.get(full);
    let index = 0;
    let rest = full;
    if (whole !== undefined) {
      index = whole;
      rest = '';
      if (index === 2 || index === 3) value = aclToExt4(value);
    } else {
      for (const [p, i] of PREFIXES)
        if (full.startsWith(p)) {
          index = i;
          rest = full.slice(p.length);
          break;
        }
    }
    const name = Buffer.from(rest);
    if (name.length > 255) throw limit(`the name ${full.slice(0, 64)}… is longer than 255 bytes`);
    out.push({ index, name, value });
  }
  out.sort(
    (a, b) => a.index - b.index || a.name.length - b.name.length || Buffer.compare(a.name, b.name),
  );
  return out;
}

const entrySize = (x: Ext4Xattr): number => (16 + x.name.length + 3) & ~3;
const valueSize = (x: Ext4Xattr): number => (x.value.length + 3) & ~3;

/** ext2fs_ext_attr_hash_entry: the name, then the value as 32-bit words. */
function entryHash(x: Ext4Xattr): number {
  let h = 0;
  for (const c of x.name) h = ((h << 5) ^ (h >>> 27) ^ c) >>> 0;
  const padded = Buffer.alloc(valueSize(x));
  x.value.copy(padded);
  for (let i = 0; i < padded.length; i += 4)
    h = ((h << 16) ^ (h >>> 16) ^ padded.readUInt32LE(i)) >>> 0;
  return h;
}

/**
 * Writes entries and values into `area` (entries from `entriesAt`, values
 * packed down from the end); offsets count from `base`. Returns the entry hashes.
 */
function fill(area: Buffer, entriesAt: number, base: number, xs: readonly Ext4Xattr[]): number[] {
  let at = entriesAt;
  let end = area.length;
  const hashes: number[] = [];
  for (const x of xs) {
    end -= valueSize(x);
    x.value.copy(area, end);
    area.writeUInt8(x.name.length, at);
    area.writeUInt8(x.index, at + 1);
    area.writeUInt16LE(x.value.length === 0 ? 0 : end - base, at + 2);
    area.writeUInt32LE(0, at + 4);
    area.writeUInt32LE(x.value.length, at + 8);
    const h = entryHash(x);
    hashes.push(h);
    area.writeUInt32LE(h, at + 12);
    x.name.copy(area, at + 16);
    at += entrySize(x);
  }
  return hashes;
}

function needed(xs: readonly Ext4Xattr[]): number {
  return xs.reduce((n, x) => n + entrySize(x) + valueSize(x), 0) + 4; // + the 4-byte end marker
}

/** The in-inode area (magic, entries, values), or null when the attributes do not fit there. */
export function inlineXattrArea(xs: readonly Ext4Xattr[]): Buffer | null {
  if (xs.length === 0) return null;
  if (4 + needed(xs) > INODE_XATTR_SPACE) return null;
  const area = Buffer.alloc(INODE_XATTR_SPACE);
  area.writeUInt32LE(XATTR_MAGIC, 0);
  fill(area, 4, 4, xs);
  return area;
}

/** True when the attributes fit one external block. */
export function fitsBlock(xs: readonly Ext4Xattr[]): boolean {
  return 32 + needed(xs) <= BLOCK_SIZE;
}

/** An external attribute block at `block`, with its hash and checksum. */
export function xattrBlock(xs: readonly Ext4Xattr[], block: number, fsSeedValue: number): Buffer {
  if (!fitsBlock(xs))
    throw limit(`${xs.length} attributes need more than one ${BLOCK_SIZE}-byte block`);
  const b = Buffer.alloc(BLOCK_SIZE);
  b.writeUInt32LE(XATTR_MAGIC, 0);
  b.writeUInt32LE(1, 4); // h_refcount
  b.writeUInt32LE(1, 8); // h_blocks
  const hashes = fill(b, 32, 0, xs);
  let h = 0;
  for (const e of hashes) h = ((h << 16) ^ (h >>> 16) ^ e) >>> 0;
  b.writeUInt32LE(h, 12);
  b.writeUInt32LE(ext4Crc(xattrBlockSeed(fsSeedValue, block), b), 16);
  return b;
}
