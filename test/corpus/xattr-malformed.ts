import { execFileSync } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import type { ErrorCode } from '../../src/errors/index.js';
import { debugfs, inodeNumber, inodeOffset } from './ext.js';
import {
  ACCESS_ACL,
  extXattrImage,
  xfsAttrExtents,
  xfsBlockByte,
  xfsDb,
  xfsDiskAcl,
  xfsInodeByte,
  xfsXattrImage,
} from './xattr-images.js';

/**
 * Hostile extended attributes: each case builds a fixture of
 * xattr-images.ts in a scratch directory, patches a few bytes of one
 * attribute structure (found with debugfs / xfs_db and by searching for the
 * names and values the tools stored, never with ferry's reader), and names
 * the path whose attributes must then be refused with `expect`.
 */
export interface XattrMalformedCase {
  readonly name: string;
  readonly fs: 'ext4' | 'xfs-v5' | 'xfs-v4';
  /** Builds the hostile image in `dir`; returns its path. */
  readonly build: (dir: string) => Promise<string>;
  readonly path: string;
  readonly expect: ErrorCode;
}

const EXT_BLOCK = 4096;

async function patch(
  path: string,
  at: number,
  write: (b: Buffer) => void,
  length = 4,
): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, at);
    write(b);
    await fh.write(b, 0, length, at);
  } finally {
    await fh.close();
  }
}

async function readAt(path: string, at: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, at);
    return b;
  } finally {
    await fh.close();
  }
}

/** Byte offset of the attribute block of an ext path (debugfs stat "File ACL"). */
function extAclBlock(img: string, path: string): number {
  const m = /File ACL: (\d+)/.exec(debugfs(img, `stat ${path}`));
  if (m === null || m[1] === '0') throw new Error(`${path} has no attribute block`);
  return Number(m[1]) * EXT_BLOCK;
}

/** Offset of the ext attribute entry whose name (after the prefix) is `name`, searched in [from, from+length). */
async function extEntry(img: string, from: number, length: number, name: string): Promise<number> {
  const area = await readAt(img, from, length);
  const at = area.indexOf(Buffer.from(name));
  if (at < 16 || area[at - 16] !== name.length) throw new Error(`no entry named ${name}`);
  return from + at - 16;
}

/** The in-inode attribute area of an ext path: [start, end). */
async function extInodeArea(img: string, path: string): Promise<[number, number]> {
  const at = inodeOffset(img, EXT_BLOCK, path);
  const extra = (await readAt(img, at + 0x80, 2)).readUInt16LE(0);
  return [at + 128 + extra, at + 256];
}

function extCase(
  name: string,
  path: string,
  expect: ErrorCode,
  hostile: (img: string) => Promise<void>,
): XattrMalformedCase {
  return {
    name,
    fs: 'ext4',
    path,
    expect,
    build: async (dir) => {
      const fx = await extXattrImage(dir, 4 * 1024 * 1024);
      await hostile(fx.img);
      return fx.img;
    },
  };
}

/** Patches an entry of user.<entry> on /f, wherever debugfs put it: the inode area or the attribute block. */
function fEntry(entry: string, write: (img: string, e: number) => Promise<void>) {
  return async (img: string): Promise<void> => {
    const [from, end] = await extInodeArea(img, '/f');
    const e = await extEntry(img, from, end - from, entry).catch(async () =>
      extEntry(img, extAclBlock(img, '/f'), EXT_BLOCK, entry),
    );
    await write(img, e);
  };
}

const u16 = (v: number) => (b: Buffer) => b.writeUInt16LE(v, 0);
const u32 = (v: number) => (b: Buffer) => b.writeUInt32LE(v, 0);

const extCases: XattrMalformedCase[] = [
  extCase(
    'ext4: an in-inode value running past the inode',
    '/f',
    'FERRY_FS_CORRUPT',
    fEntry('foo', (img, e) => patch(img, e + 8, u32(200))),
  ),
  extCase(
    'ext4: an in-inode value placed over the entry table',
    '/f',
    'FERRY_FS_CORRUPT',
    fEntry('foo', (img, e) => patch(img, e + 2, u16(0), 2)),
  ),
  extCase(
    'ext4: an in-inode name running past the inode',
    '/f',
    'FERRY_FS_CORRUPT',
    fEntry('foo', (img, e) => patch(img, e, (b) => b.writeUInt8(255, 0), 1)),
  ),
  extCase('ext4: an attribute block with a bad magic', '/f', 'FERRY_FS_CORRUPT', async (img) =>
    patch(img, extAclBlock(img, '/f'), u32(0)),
  ),
  extCase('ext4: an attribute block claiming two blocks', '/f', 'FERRY_FS_CORRUPT', async (img) =>
    patch(img, extAclBlock(img, '/f') + 8, u32(2)),
  ),
  extCase(
    'ext4: an attribute block outside the filesystem',
    '/f',
    'FERRY_FS_CORRUPT',
    async (img) => patch(img, inodeOffset(img, EXT_BLOCK, '/f') + 0x68, u32(0xfffffff0)),
  ),
  extCase(
    'ext4: a block value over 64 KiB',
    '/f',
    'FERRY_FS_LIMIT',
    fEntry('big', (img, e) => patch(img, e + 8, u32(70_000))),
  ),
  extCase(
    'ext4: a block value running past the block',
    '/f',
    'FERRY_FS_CORRUPT',
    fEntry('big', (img, e) => patch(img, e + 2, u16(4000), 2)),
  ),
  extCase(
    'ext4: a name in the block repeating one in the inode',
    '/f',
    'FERRY_FS_CORRUPT',
    fEntry('big', (img, e) => patch(img, e + 16, (b) => b.write('foo', 0, 'latin1'), 3)),
  ),
  extCase(
    'ext4: a value inode that is a plain file',
    '/f',
    'FERRY_FS_CORRUPT',
    fEntry('huge', (img, e) => patch(img, e + 4, u32(inodeNumber(img, '/plain')))),
  ),
  extCase(
    'ext4: a value inode of the wrong size',
    '/f',
    'FERRY_FS_CORRUPT',
    fEntry('huge', async (img, e) => {
      const ea = (await readAt(img, e + 4, 4)).readUInt32LE(0);
      await patch(img, inodeOffset(img, EXT_BLOCK, `<${ea}>`) + 4, u32(4000));
    }),
  ),
  extCase(
    'ext4: a value inode without the ea_inode feature',
    '/f',
    'FERRY_FS_CORRUPT',
    async (img) => patch(img, 1024 + 0x60, (b) => b.writeUInt32LE(b.readUInt32LE(0) & ~0x400, 0)),
  ),
  extCase('ext4: a POSIX ACL entry with an unknown tag', '/d', 'FERRY_FS_CORRUPT', async (img) => {
    // ext4's form of the access ACL: version 1, user::rw-, user:1000:r--.
    const acl = Buffer.from('010000000100060002000400e8030000', 'hex');
    const all = await readFile(img);
    const at = all.indexOf(acl);
    if (at < 0 || all.indexOf(acl, at + 1) >= 0) throw new Error('the ACL is not there once');
    await patch(img, at + 4, u16(0x40), 2);
  }),
  extCase('ext4: more than 128 attributes', '/f', 'FERRY_FS_LIMIT', async (img) => {
    // A well-formed block of 130 empty user attributes: only the count is wrong.
    const block = extAclBlock(img, '/f');
    const b = await readAt(img, block, EXT_BLOCK);
    b.fill(0, 32);
    for (let i = 0; i < 130; i++) {
      const e = 32 + i * 20;
      b[e] = 4;
      b[e + 1] = 1;
      b.write(`a${String(i).padStart(3, '0')}`, e + 16, 'latin1');
    }
    const fh = await open(img, 'r+');
    await fh.write(b, 0, b.length, block);
    await fh.close();
  }),
];

function xfsCase(
  name: string,
  v4: boolean,
  path: string,
  expect: ErrorCode,
  hostile: (img: string) => Promise<void>,
): XattrMalformedCase {
  return {
    name: `xfs ${v4 ? 'v4' : 'v5'}: ${name}`,
    fs: v4 ? 'xfs-v4' : 'xfs-v5',
    path,
    expect,
    build: async (dir) => {
      const fx = await xfsXattrImage(dir, v4);
      await hostile(fx.img);
      return fx.img;
    },
  };
}

const XFS_INODE = 512;

/** The attribute fork of an XFS path: its byte offset (di_forkoff past the inode core). */
async function xfsAttrFork(img: string, path: string, v4: boolean): Promise<number> {
  const at = xfsInodeByte(img, path, XFS_INODE);
  const forkoff = (await readAt(img, at + 82, 1))[0]!;
  if (forkoff === 0) throw new Error(`${path} has no attribute fork`);
  return at + (v4 ? 100 : 176) + forkoff * 8;
}

async function xfsBlock0(img: string, path: string): Promise<number> {
  const e = xfsAttrExtents(img, path).find((x) => x.off === 0);
  if (e === undefined) throw new Error(`${path} has no attribute block 0`);
  return xfsBlockByte(img, e.block);
}

/** The remote leaf entry of user.remote on /leaf: the offset of its valueblk field. */
async function xfsRemoteEntry(img: string): Promise<number> {
  const block = await xfsBlock0(img, '/leaf');
  const b = await readAt(img, block, 4096);
  const at = b.indexOf(Buffer.from('\x06remote', 'latin1'));
  if (at < 8) throw new Error('no remote entry');
  return block + at - 8;
}

const be16 = (v: number) => (b: Buffer) => b.writeUInt16BE(v, 0);
const be32 = (v: number) => (b: Buffer) => b.writeUInt32BE(v, 0);

function xfsCases(v4: boolean): XattrMalformedCase[] {
  const leafHdr = v4 ? 32 : 80;
  const leafCount = v4 ? 12 : 56;
  const nodeLevel = v4 ? 14 : 58;
  const nodeHdr = v4 ? 16 : 64;
  return [
    xfsCase('a short-form size past the fork', v4, '/sf', 'FERRY_FS_CORRUPT', async (img) =>
      patch(img, await xfsAttrFork(img, '/sf', v4), be16(0xffff), 2),
    ),
    xfsCase(
      'a short-form entry running past its list',
      v4,
      '/sf',
      'FERRY_FS_CORRUPT',
      async (img) =>
        patch(img, (await xfsAttrFork(img, '/sf', v4)) + 4, (b) => b.writeUInt8(250, 0), 1),
    ),
    xfsCase('an unknown attribute fork format', v4, '/sf', 'FERRY_FS_CORRUPT', async (img) =>
      patch(img, xfsInodeByte(img, '/sf', XFS_INODE) + 83, (b) => b.writeUInt8(7, 0), 1),
    ),
    xfsCase('a leaf claiming more entries than fit', v4, '/leaf', 'FERRY_FS_CORRUPT', async (img) =>
      patch(img, (await xfsBlock0(img, '/leaf')) + leafCount, be16(0xffff), 2),
    ),
    xfsCase('a leaf entry pointing past its block', v4, '/leaf', 'FERRY_FS_CORRUPT', async (img) =>
      patch(img, (await xfsBlock0(img, '/leaf')) + leafHdr + 4, be16(0xfff0), 2),
    ),
    xfsCase('a remote value over 64 KiB', v4, '/leaf', 'FERRY_FS_LIMIT', async (img) =>
      patch(img, (await xfsRemoteEntry(img)) + 4, be32(70_000)),
    ),
    xfsCase('a remote value in an unmapped block', v4, '/leaf', 'FERRY_FS_CORRUPT', async (img) =>
      patch(img, await xfsRemoteEntry(img), be32(100_000)),
    ),
    xfsCase('a dabtree node at an impossible level', v4, '/node', 'FERRY_FS_CORRUPT', async (img) =>
      patch(img, (await xfsBlock0(img, '/node')) + nodeLevel, be16(9), 2),
    ),
    xfsCase('a dabtree node pointing at itself', v4, '/node', 'FERRY_FS_CORRUPT', async (img) =>
      patch(img, (await xfsBlock0(img, '/node')) + nodeHdr + 4, be32(0)),
    ),
    xfsCase(
      'an ACL whose size disagrees with its count',
      v4,
      '/sf',
      'FERRY_FS_CORRUPT',
      async (img) => {
        const fork = await xfsAttrFork(img, '/sf', v4);
        const b = await readAt(img, fork, 256);
        const at = b.indexOf(xfsDiskAcl(ACCESS_ACL));
        if (at < 0) throw new Error('the ACL is not in the fork');
        await patch(img, fork + at, be32(7));
      },
    ),
    xfsCase('more than 128 attributes', v4, '/node', 'FERRY_FS_LIMIT', async (img) => {
      // /node holds 121; xfs_db adds eight more, every structure well formed.
      xfsDb(
        img,
        ['path /node', ...Array.from({ length: 8 }, (_, i) => `attr_set -u -v 1 extra${i}`)],
        true,
      );
    }),
    ...(v4
      ? []
      : [
          xfsCase(
            'a remote block with a bad header',
            v4,
            '/leaf',
            'FERRY_FS_CORRUPT',
            async (img) => {
              const first = (await readAt(img, await xfsRemoteEntry(img), 4)).readUInt32BE(0);
              const e = xfsAttrExtents(img, '/leaf').find(
                (x) => first >= x.off && first < x.off + x.count,
              )!;
              await patch(img, xfsBlockByte(img, e.block + first - e.off), be32(0));
            },
          ),
        ]),
  ];
}

export const xattrCases: readonly XattrMalformedCase[] = [
  ...extCases,
  ...xfsCases(false),
  ...xfsCases(true),
];

/** True when the tools the cases need are installed. */
export function haveToolsFor(c: XattrMalformedCase): boolean {
  try {
    execFileSync('sh', ['-c', c.fs === 'ext4' ? 'command -v debugfs' : 'command -v xfs_db'], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}
