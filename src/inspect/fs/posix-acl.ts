/**
 * POSIX ACLs as filesystems store them, turned into the form Linux's
 * getxattr returns for system.posix_acl_access / system.posix_acl_default
 * (the "VFS" form a directory ingest records): a little-endian u32 version 2,
 * then per entry u16 tag, u16 permissions, u32 id, where the id of the
 * owner, owning group, mask and other entries is 0xffffffff. The entries keep
 * their stored order, as the kernel does.
 */

export const ACL_XATTR_ACCESS = 'system.posix_acl_access';
export const ACL_XATTR_DEFAULT = 'system.posix_acl_default';

const VFS_VERSION = 2;
const UNDEFINED_ID = 0xffffffff;

const TAG = {
  userObj: 0x01,
  user: 0x02,
  groupObj: 0x04,
  group: 0x08,
  mask: 0x10,
  other: 0x20,
} as const;

const SHORT_TAGS: ReadonlySet<number> = new Set([TAG.userObj, TAG.groupObj, TAG.mask, TAG.other]);
const ID_TAGS: ReadonlySet<number> = new Set([TAG.user, TAG.group]);

/** The reason an ACL cannot be decoded; the caller turns it into its coded error. */
export type AclFailure = (reason: string) => Error;

interface AclEntry {
  readonly tag: number;
  readonly perm: number;
  readonly id: number;
}

function toVfs(entries: readonly AclEntry[]): Buffer {
  const out = Buffer.alloc(4 + entries.length * 8);
  out.writeUInt32LE(VFS_VERSION, 0);
  entries.forEach((e, i) => {
    out.writeUInt16LE(e.tag, 4 + i * 8);
    out.writeUInt16LE(e.perm, 6 + i * 8);
    out.writeUInt32LE(ID_TAGS.has(e.tag) ? e.id : UNDEFINED_ID, 8 + i * 8);
  });
  return out;
}

/** ext2/3/4's on-disk ACL version. */
const EXT4_ACL_VERSION = 1;

/**
 * ext4's compact ACL (u32 version 1, then 4-byte entries for the owner,
 * owning group, mask and other, 8-byte ones with an id for named users and
 * groups) as the VFS form. Null when it holds no entries: the kernel then
 * reports no ACL at all.
 */
export function ext4AclToVfs(raw: Buffer, fail: AclFailure): Buffer | null {
  if (raw.length < 4) throw fail('a POSIX ACL is shorter than its header');
  const version = raw.readUInt32LE(0);
  if (version !== EXT4_ACL_VERSION) throw fail(`a POSIX ACL has version ${version}`);
  const entries: AclEntry[] = [];
  let pos = 4;
  // Every entry takes at least 4 bytes: the loop is bounded by the value size.
  while (pos < raw.length) {
    if (pos + 4 > raw.length) throw fail('a POSIX ACL entry is truncated');
    const tag = raw.readUInt16LE(pos);
    const perm = raw.readUInt16LE(pos + 2);
    if (SHORT_TAGS.has(tag)) {
      entries.push({ tag, perm, id: UNDEFINED_ID });
      pos += 4;
    } else if (ID_TAGS.has(tag)) {
      if (pos + 8 > raw.length) throw fail('a POSIX ACL entry is truncated');
      entries.push({ tag, perm, id: raw.readUInt32LE(pos + 4) });
      pos += 8;
    } else {
      throw fail(`a POSIX ACL entry has the unknown tag 0x${tag.toString(16)}`);
    }
  }
  return entries.length === 0 ? null : toVfs(entries);
}

/** XFS's ACL attribute names (in its root namespace) and the Linux names they stand for. */
export const XFS_ACL_NAMES: Readonly<Record<string, string>> = {
  SGI_ACL_FILE: ACL_XATTR_ACCESS,
  SGI_ACL_DEFAULT: ACL_XATTR_DEFAULT,
};

/** Entries an XFS ACL may hold: 25 on v4 filesystems, as many as fit in 64 KiB on v5. */
export function xfsAclMaxEntries(v5: boolean): number {
  return v5 ? Math.floor((64 * 1024 - 4) / 12) : 25;
}

/**
 * XFS's big-endian ACL (u32 count, then per entry u32 tag, u32 id, u16
 * permissions, u16 padding) as the VFS form.
 */
export function xfsAclToVfs(raw: Buffer, maxEntries: number, fail: AclFailure): Buffer {
  if (raw.length < 4) throw fail('a POSIX ACL is shorter than its header');
  const count = raw.readUInt32BE(0);
  if (count > maxEntries) throw fail(`a POSIX ACL claims ${count} entries`);
  if (raw.length !== 4 + count * 12)
    throw fail(`a POSIX ACL of ${count} entries is ${raw.length} bytes`);
  const entries: AclEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = 4 + i * 12;
    const tag = raw.readUInt32BE(at);
    if (!SHORT_TAGS.has(tag) && !ID_TAGS.has(tag))
      throw fail(`a POSIX ACL entry has the unknown tag 0x${tag.toString(16)}`);
    entries.push({ tag, id: raw.readUInt32BE(at + 4), perm: raw.readUInt16BE(at + 8) });
  }
  return toVfs(entries);
}
