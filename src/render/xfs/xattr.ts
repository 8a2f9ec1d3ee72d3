import { FerryError } from '../../errors/index.js';
import { setCrc } from './checksum.js';
import { BLOCK_SIZE, MAGIC } from './constants.js';
import { daHash } from './da-hash.js';

/**
 * Extended attributes as XFS keeps them: a namespace flag (none for
 * user.*, ROOT for trusted.*, SECURE for security.*) and the rest of the
 * name. POSIX ACLs are XFS's own SGI_ACL_FILE / SGI_ACL_DEFAULT in the ROOT
 * namespace, in its big-endian form. Short form inside the inode when the
 * attributes fit there, else one leaf block, with the values too big for it
 * in remote value blocks ("XARM" header each).
 */
export interface XfsXattr {
  readonly flags: number;
  readonly name: Buffer;
  readonly value: Buffer;
}

const ROOT = 0x02;
const SECURE = 0x04;
const LOCAL = 0x01;
const LEAF_HEADER = 80;

function input(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_INPUT', `Cannot write extended attributes: ${reason}`);
}

function limit(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_LIMIT', `Cannot write extended attributes: ${reason}`);
}

/** The kernel's xattr form of a POSIX ACL (version 2, 8-byte entries) as XFS stores it. */
export function aclToXfs(vfs: Buffer): Buffer {
  if (vfs.length < 4 || (vfs.length - 4) % 8 !== 0 || vfs.readUInt32LE(0) !== 2)
    throw input('a POSIX ACL is not a version 2 ACL in the kernel xattr form');
  const n = (vfs.length - 4) / 8;
  const out = Buffer.alloc(4 + n * 12);
  out.writeUInt32BE(n, 0);
  for (let i = 0; i < n; i++) {
    const tag = vfs.readUInt16LE(4 + i * 8);
    const perm = vfs.readUInt16LE(6 + i * 8);
    const named = tag === 0x02 || tag === 0x08;
    out.writeUInt32BE(tag, 4 + i * 12);
    out.writeUInt32BE(named ? vfs.readUInt32LE(8 + i * 8) : 0xffffffff, 8 + i * 12);
    out.writeUInt16BE(perm, 12 + i * 12);
  }
  return out;
}

/** Manifest xattrs (name -> base64) as XFS attributes, in a fixed order. */
export function toXfsXattrs(xattrs: Readonly<Record<string, string>> | undefined): XfsXattr[] {
  if (xattrs === undefined) return [];
  const out: XfsXattr[] = [];
  for (const [full, b64] of Object.entries(xattrs)) {
    const raw = Buffer.from(b64, 'base64');
    let x: XfsXattr;
    if (full === 'system.posix_acl_access')
      x = { flags: ROOT, name: Buffer.from('SGI_ACL_FILE'), value: aclToXfs(raw) };
    else if (full === 'system.posix_acl_default')
      x = { flags: ROOT, name: Buffer.from('SGI_ACL_DEFAULT'), value: aclToXfs(raw) };
    else if (full.startsWith('user.'))
      x = { flags: 0, name: Buffer.from(full.slice(5)), value: raw };
    else if (full.startsWith('trusted.'))
      x = { flags: ROOT, name: Buffer.from(full.slice(8)), value: raw };
    else if (full.startsWith('security.'))
      x = { flags: SECURE, name: Buffer.from(full.slice(9)), value: raw };
    else throw input(`XFS has no namespace for ${full.slice(0, 64)}`);
    if (x.name.length === 0 || x.name.length > 255)
      throw limit(`the name ${full.slice(0, 64)} is empty or longer than 255 bytes`);
    if (x.value.length > 65536)
      throw limit(`the value of ${full.slice(0, 64)} is larger than the 64 KiB Linux reads back`);
    out.push(x);
  }
  return out.sort((a, b) => a.flags - b.flags || Buffer.compare(a.name, b.name));
}

/** The short form (4-byte header; name length, value length, flags, name, value per entry), or null. */
export function shortformAttrs(xs: readonly XfsXattr[]): Buffer | null {
  if (xs.length === 0 || xs.length > 255 || xs.some((x) => x.value.length > 255)) return null;
  const parts: Buffer[] = [];
  for (const x of xs) {
    const b = Buffer.alloc(3 + x.name.length + x.value.length);
    b[0] = x.name.length;
    b[1] = x.value.length;
    b[2] = x.flags;
    x.name.copy(b, 3);
    x.value.copy(b, 3 + x.name.length);
    parts.push(b);
  }
  const total = 4 + parts.reduce((n, p) => n + p.length, 0);
  const h = Buffer.alloc(4);
  h.writeUInt16BE(total, 0);
  h[2] = xs.length;
  return Buffer.concat([h, ...parts]);
}

const localSize = (x: XfsXattr): number => Math.ceil((3 + x.name.length + x.value.length) / 4) * 4;
/** A remote entry: block, length, name length and name, sized as XFS sizes it (its struct pads to 12). */
const remoteSize = (x: XfsXattr): number => Math.ceil((11 + x.name.length) / 4) * 4;
/** Value bytes one remote value block holds after its 56-byte header. */
export const REMOTE_ROOM = BLOCK_SIZE - 56;
/** The largest local entry XFS keeps in a leaf (three quarters of a block). */
const LOCAL_MAX = (BLOCK_SIZE * 3) / 4;

/**
 * One leaf block and the values that go to their own blocks: the largest
 * values move out (every one too big for a local entry, then more until the
 * leaf fits). Remote values follow the leaf at logical blocks 1, 2, ... of
 * the attribute fork.
 */
export interface AttrLeafLayout {
  readonly xs: readonly XfsXattr[];
  /** Per attribute: its first remote block (logical), or -1 when its value is local. */
  readonly remoteAt: readonly number[];
  /** Blocks of the fork: the leaf and the remote value blocks. */
  readonly blocks: number;
}

export function layoutAttrLeaf(xs: readonly XfsXattr[], path: string): AttrLeafLayout {
  const remote = xs.map((x) => localSize(x) >= LOCAL_MAX);
  const bytes = (): number =>
    LEAF_HEADER + xs.reduce((n, x, i) => n + 8 + (remote[i] ? remoteSize(x) : localSize(x)), 0);
  const bySize = xs
    .map((_, i) => i)
    .sort((a, b) => xs[b]!.value.length - xs[a]!.value.length || a - b);
  for (const i of bySize) {
    if (bytes() <= BLOCK_SIZE) break;
    remote[i] = true;
  }
  if (bytes() > BLOCK_SIZE)
    throw limit(
      `those of ${path || '/'} need more than one ${BLOCK_SIZE}-byte leaf block of names, which this writer makes`,
    );
  const remoteAt: number[] = [];
  let next = 1;
  xs.forEach((x, i) => {
    if (!remote[i]) remoteAt.push(-1);
    else {
      remoteAt.push(next);
      next += Math.max(1, Math.ceil(x.value.length / REMOTE_ROOM));
    }
  });
  return { xs, remoteAt, blocks: next };
}

/** The remote value blocks of one attribute, each with its header (logical blocks from `first`). */
export function remoteValueBlocks(
  x: XfsXattr,
  owner: number,
  daddrs: readonly bigint[],
  uuid: Buffer,
): Buffer[] {
  const out: Buffer[] = [];
  for (let k = 0, done = 0; k < daddrs.length; k++) {
    const take = Math.min(REMOTE_ROOM, x.value.length - done);
    const b = Buffer.alloc(BLOCK_SIZE);
    b.writeUInt32BE(MAGIC.attrRemote, 0);
    b.writeUInt32BE(done, 4);
    b.writeUInt32BE(take, 8);
    uuid.copy(b, 16);
    b.writeBigUInt64BE(BigInt(owner), 32);
    b.writeBigUInt64BE(daddrs[k]!, 40);
    x.value.copy(b, 56, done, done + take);
    setCrc(b, 12);
    out.push(b);
    done += take;
  }
  return out;
}

/** The leaf block (logical block 0 of the attribute fork): entries by hash, names and local values from the end. */
export function attrLeafBlock(
  layout: AttrLeafLayout,
  owner: number,
  daddr: bigint,
  uuid: Buffer,
): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  b.writeUInt16BE(MAGIC.attrLeaf, 8);
  b.writeBigUInt64BE(daddr, 16);
  uuid.copy(b, 32);
  b.writeBigUInt64BE(BigInt(owner), 48);
  const sorted = layout.xs
    .map((x, i) => ({ x, hash: daHash(x.name), at: layout.remoteAt[i]! }))
    .sort((a, c) => a.hash - c.hash || a.x.flags - c.x.flags || Buffer.compare(a.x.name, c.x.name));
  let end = BLOCK_SIZE;
  let used = 0;
  sorted.forEach(({ x, hash, at }, i) => {
    const local = at < 0;
    const size = local ? localSize(x) : remoteSize(x);
    end -= size;
    used += size;
    if (local) {
      b.writeUInt16BE(x.value.length, end);
      b[end + 2] = x.name.length;
      x.name.copy(b, end + 3);
      x.value.copy(b, end + 3 + x.name.length);
    } else {
      b.writeUInt32BE(at, end);
      b.writeUInt32BE(x.value.length, end + 4);
      b[end + 8] = x.name.length;
      x.name.copy(b, end + 9);
    }
    const e = LEAF_HEADER + i * 8;
    b.writeUInt32BE(hash, e);
    b.writeUInt16BE(end, e + 4);
    b[e + 6] = x.flags | (local ? LOCAL : 0);
  });
  const base = LEAF_HEADER + sorted.length * 8;
  b.writeUInt16BE(sorted.length, 56);
  b.writeUInt16BE(used, 58);
  b.writeUInt16BE(end, 60);
  b.writeUInt16BE(base, 64);
  b.writeUInt16BE(end - base, 66);
  setCrc(b, 12);
  return b;
}
