import { ACL_XATTR_ACCESS, ACL_XATTR_DEFAULT, ext4AclToVfs } from '../posix-acl.js';
import { type Xattr, XattrList } from '../xattr-list.js';
import { type ExtInode, ibodyXattrTable, XATTR_INDEX_SYSTEM } from './inode.js';
import { type ExtSuperblock, INCOMPAT } from './superblock.js';
import {
  EXT_XATTR_BLOCK_HEADER,
  EXT_XATTR_MAGIC,
  type ExtXattrTable,
  parseXattrEntries,
  xattrValue,
} from './xattr-entries.js';

/**
 * Name prefixes by name index, as e2fsprogs assigns them. Index 7 holds
 * system.data, the inline-data marker, which the kernel never lists and is
 * skipped by name. Other index-7 names and index 8 (richacl) have no handler
 * in Linux either, so a mounted filesystem would not list them; they are
 * kept under their e2fsprogs names rather than dropped (exporting them to a
 * directory will likely be refused). Indexes with no name at all (5 Lustre,
 * 9 the encryption context, unknown ones) are skipped.
 */
const PREFIXES: Readonly<Record<number, string>> = {
  1: 'user.',
  2: ACL_XATTR_ACCESS,
  3: ACL_XATTR_DEFAULT,
  4: 'trusted.',
  6: 'security.',
  7: 'system.',
  8: 'system.richacl',
  10: 'gnu.',
};

/** What the attribute reader needs from the driver. */
export interface ExtXattrContext {
  readonly sb: ExtSuperblock;
  /** Reads one metadata block (bounds-checked and cached by the driver). */
  readBlock(block: number): Promise<Buffer>;
  /** Reads the value held by an ea_inode: `size` bytes, checked against that inode. */
  readValueInode(ino: number, size: number, list: XattrList): Promise<Buffer>;
}

/**
 * The extended attributes of an inode: the in-inode area first, then the
 * attribute block (i_file_acl, one block, h_blocks 1), values from either
 * area or from an ea_inode. POSIX ACLs are converted from ext4's compact
 * form to the VFS form. Checksums (h_checksum, e_hash) are not verified.
 */
export async function readExtXattrs(ctx: ExtXattrContext, inode: ExtInode): Promise<Xattr[]> {
  const list = new XattrList(`ext inode ${inode.ino}`);
  const fail = (reason: string) => list.error('FERRY_FS_CORRUPT', reason);
  if (inode.ibodyXattrs !== null) {
    const area = inode.ibodyXattrs;
    const { table, base } = ibodyXattrTable(area, fail);
    await addEntries(ctx, list, area, table, base, area.length);
  }
  if (inode.fileAcl !== 0) {
    const block = inode.fileAcl;
    if (block < ctx.sb.firstDataBlock || block >= ctx.sb.blocksCount)
      throw list.error('FERRY_FS_CORRUPT', 'its attribute block lies outside the filesystem', {
        block,
      });
    const buf = await ctx.readBlock(block);
    if (buf.readUInt32LE(0) !== EXT_XATTR_MAGIC)
      throw list.error('FERRY_FS_CORRUPT', 'its attribute block has a bad magic', { block });
    const blocks = buf.readUInt32LE(8);
    if (blocks !== 1)
      throw list.error('FERRY_FS_CORRUPT', `its attribute block claims ${blocks} blocks`, {
        block,
      });
    const table = parseXattrEntries(buf, EXT_XATTR_BLOCK_HEADER, buf.length, fail);
    await addEntries(ctx, list, buf, table, 0, buf.length);
  }
  return list.list();
}

async function addEntries(
  ctx: ExtXattrContext,
  list: XattrList,
  buf: Buffer,
  table: ExtXattrTable,
  base: number,
  end: number,
): Promise<void> {
  const fail = (reason: string) => list.error('FERRY_FS_CORRUPT', reason);
  for (const e of table.entries) {
    const prefix = PREFIXES[e.nameIndex];
    if (prefix === undefined) continue;
    const suffix = e.name.toString('utf8');
    if (e.nameIndex === XATTR_INDEX_SYSTEM && suffix === 'data') continue;
    const name = prefix + suffix;
    list.checkValueSize(name, e.valueSize);
    let value: Buffer;
    if (e.valueInum !== 0) {
      if ((ctx.sb.incompat & INCOMPAT.eaInode) === 0)
        throw fail(`the value of ${name.slice(0, 80)} is in another inode without ea_inode`);
      if (e.valueOffs !== 0)
        throw fail(`the value of ${name.slice(0, 80)} has both an inode and an offset`);
      value = await ctx.readValueInode(e.valueInum, e.valueSize, list);
    } else {
      value = Buffer.from(xattrValue(buf, table, e, base, end, fail));
    }
    if (name === ACL_XATTR_ACCESS || name === ACL_XATTR_DEFAULT) {
      const vfs = ext4AclToVfs(value, fail);
      if (vfs === null) continue;
      value = vfs;
    }
    list.add(name, value);
  }
}
