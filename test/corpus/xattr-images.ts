import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, open, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pseudoRandom } from '../helpers/disks.js';

/**
 * Filesystem images whose extended attributes were set by the filesystems'
 * own tools (debugfs ea_set, xfs_db attr_set), never by ferry: the
 * expectations are what the tools were told to store, in the form Linux's
 * getxattr returns (POSIX ACLs in the VFS form).
 */
export interface XattrFixture {
  readonly img: string;
  /** Path inside the filesystem -> attribute name -> value. Paths not listed have none. */
  readonly expect: ReadonlyMap<string, Readonly<Record<string, Buffer>>>;
  /** Paths in the image, attributes or not (for walking). */
  readonly paths: readonly string[];
}

export const haveXattrTools: { ext: boolean; xfs: boolean } = (() => {
  const has = (cmd: string): boolean => {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  return {
    ext: has('mke2fs') && has('debugfs'),
    xfs: has('mkfs.xfs') && has('xfs_db') && has('xfs_repair'),
  };
})();

const ACL = {
  userObj: 0x01,
  user: 0x02,
  groupObj: 0x04,
  group: 0x08,
  mask: 0x10,
  other: 0x20,
} as const;

type AclEntry = readonly [tag: number, perm: number, id?: number];

/** An ACL as getxattr returns it: version 2, then tag, perm, id (0xffffffff where there is none). */
export function vfsAcl(entries: readonly AclEntry[]): Buffer {
  const out = Buffer.alloc(4 + 8 * entries.length);
  out.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    out.writeUInt16LE(tag, 4 + 8 * i);
    out.writeUInt16LE(perm, 6 + 8 * i);
    out.writeUInt32LE(id ?? 0xffffffff, 8 + 8 * i);
  });
  return out;
}

/** The same ACL as XFS stores it: u32 count, then u32 tag, u32 id, u16 perm, u16 pad, big-endian. */
export function xfsDiskAcl(entries: readonly AclEntry[]): Buffer {
  const out = Buffer.alloc(4 + 12 * entries.length);
  out.writeUInt32BE(entries.length, 0);
  entries.forEach(([tag, perm, id], i) => {
    out.writeUInt32BE(tag, 4 + 12 * i);
    out.writeUInt32BE(id ?? 0xffffffff, 8 + 12 * i);
    out.writeUInt16BE(perm, 12 + 12 * i);
  });
  return out;
}

/** user::rw- user:1000:r-- group::r-- group:2000:r-x mask::rwx other::--x */
export const ACCESS_ACL: readonly AclEntry[] = [
  [ACL.userObj, 6],
  [ACL.user, 4, 1000],
  [ACL.groupObj, 4],
  [ACL.group, 5, 2000],
  [ACL.mask, 7],
  [ACL.other, 1],
];
/** user::rwx group::r-x other::r-x */
export const DEFAULT_ACL: readonly AclEntry[] = [
  [ACL.userObj, 7],
  [ACL.groupObj, 5],
  [ACL.other, 5],
];

async function sparseFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
}

/** Runs debugfs requests (one a line) against an image, read-write. */
async function debugfsWrite(img: string, requests: readonly string[], dir: string): Promise<void> {
  const cmdFile = join(dir, 'debugfs-requests');
  await writeFile(cmdFile, `${requests.join('\n')}\n`);
  const r = spawnSync('debugfs', ['-w', '-f', cmdFile, img], { encoding: 'utf8' });
  // debugfs exits 0 when a request fails; its complaints go to stderr after the version banner.
  const complaints = r.stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('debugfs '));
  if (r.status !== 0 || complaints.length > 0)
    throw new Error(`debugfs failed: ${complaints.join('; ')}`);
}

/**
 * An ext4 image (4 KiB blocks, 256-byte inodes, ea_inode) made by mke2fs -d
 * from a small Linux-looking tree, then given attributes by debugfs ea_set:
 * small ones that fit in the inode, a 1500-byte one that must go to the
 * attribute block, a 4096-byte one that fits neither and goes to an
 * ea_inode, trusted. and security. ones, POSIX ACLs (debugfs converts the
 * VFS form it is given to ext4's on-disk form), and one on a symlink.
 */
export async function extXattrImage(dir: string, size = 16 * 1024 * 1024): Promise<XattrFixture> {
  const src = join(dir, 'ext-src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await mkdir(join(src, 'usr/bin'), { recursive: true });
  await mkdir(join(src, 'd/inner'), { recursive: true });
  await writeFile(join(src, 'etc/os-release'), 'ID=debian\n');
  await writeFile(join(src, 'usr/bin/tool'), 'ELF');
  await writeFile(join(src, 'f'), 'contents\n');
  await writeFile(join(src, 'plain'), 'no attributes\n');
  await symlink('f', join(src, 'l'));
  const img = join(dir, 'xattrs.ext4');
  await sparseFile(img, size);
  execFileSync(
    'mke2fs',
    [
      '-q',
      '-F',
      '-t',
      'ext4',
      '-b',
      '4096',
      '-I',
      '256',
      '-O',
      'ea_inode,^has_journal',
      '-E',
      'root_owner=0:0',
      '-d',
      src,
      img,
    ],
    { stdio: 'ignore' },
  );
  const values = join(dir, 'ext-values');
  await mkdir(values, { recursive: true });
  const expect = new Map<string, Record<string, Buffer>>([
    [
      '/f',
      {
        'user.foo': Buffer.from('bar'),
        'trusted.t': Buffer.from('hello'),
        'security.selinux': Buffer.from('system_u:object_r:etc_t:s0\0'),
        'user.big': pseudoRandom(1500, 'ext-big'),
        'user.huge': pseudoRandom(4096, 'ext-huge'),
      },
    ],
    [
      '/d',
      {
        'system.posix_acl_access': vfsAcl(ACCESS_ACL),
        'system.posix_acl_default': vfsAcl(DEFAULT_ACL),
        'user.dir': Buffer.from('x'),
      },
    ],
    ['/l', { 'trusted.link': Buffer.from('on the link itself') }],
    ['/etc/os-release', { 'user.empty': Buffer.alloc(0) }],
  ]);
  const requests: string[] = [];
  let n = 0;
  for (const [path, attrs] of expect) {
    for (const [name, value] of Object.entries(attrs)) {
      const file = join(values, `v${n++}`);
      await writeFile(file, value);
      requests.push(`ea_set -f ${file} ${path} ${name}`);
    }
  }
  await debugfsWrite(img, requests, dir);
  return {
    img,
    expect,
    paths: [
      '/',
      '/etc',
      '/etc/os-release',
      '/usr/bin/tool',
      '/f',
      '/plain',
      '/l',
      '/d',
      '/d/inner',
    ],
  };
}

/** Runs xfs_db commands against an image, in expert (writing) mode. */
export function xfsDb(img: string, commands: readonly string[], write = false): string {
  const args = [...(write ? ['-x'] : []), ...commands.flatMap((c) => ['-c', c]), img];
  return execFileSync('xfs_db', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** The disk byte offset of an XFS filesystem block (xfs_db convert, AG-aware). */
export function xfsBlockByte(img: string, fsblock: number): number {
  const m = /\((\d+)\)/.exec(xfsDb(img, [`convert fsblock ${fsblock} daddr`]));
  if (m === null) throw new Error('xfs_db convert failed');
  return Number(m[1]) * 512;
}

/** The attribute fork's extents of a path, per xfs_db bmap -a. */
export function xfsAttrExtents(
  img: string,
  path: string,
): Array<{ off: number; block: number; count: number }> {
  const out = [];
  for (const line of xfsDb(img, [`path ${path}`, 'bmap -a']).split('\n')) {
    const m = /attr offset (\d+) startblock (\d+) \(\d+\/\d+\) count (\d+)/.exec(line);
    if (m !== null) out.push({ off: Number(m[1]), block: Number(m[2]), count: Number(m[3]) });
  }
  return out;
}

/** The disk byte offset of the inode at a path (xfs_db convert inode N daddr, plus its place in the sector). */
export function xfsInodeByte(img: string, path: string, inodeSize: number): number {
  const ino = /current inode number is (\d+)/.exec(xfsDb(img, [`path ${path}`, 'inode']));
  if (ino === null) throw new Error(`xfs_db cannot find ${path}`);
  const m = /\((\d+)\)/.exec(xfsDb(img, [`convert inode ${ino[1]} daddr`]));
  if (m === null) throw new Error('xfs_db convert failed');
  return Number(m[1]) * 512 + ((Number(ino[1]) * inodeSize) % 512);
}

/** Overwrites `length` bytes at `offset` of a file. */
async function patchFile(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, offset);
    return b;
  } finally {
    await fh.close();
  }
}

/**
 * xfs_db attr_set can only store values of the letter "v". To store an ACL
 * it sets a placeholder of the right length, then this finds the one place
 * in [from, from+length) of the image where the name is followed by the
 * placeholder (names and local values are stored together) and writes the
 * real value there.
 */
async function replacePlaceholder(
  img: string,
  from: number,
  length: number,
  name: string,
  value: Buffer,
): Promise<void> {
  const area = await readAt(img, from, length);
  const pattern = Buffer.concat([Buffer.from(name), Buffer.alloc(value.length, 'v')]);
  const at = area.indexOf(pattern);
  if (at < 0 || area.indexOf(pattern, at + 1) >= 0)
    throw new Error(`the placeholder of ${name} is not in the area exactly once`);
  await patchFile(img, from + at + name.length, value);
}

/**
 * An XFS image (v5, or v4 without CRCs) made by mkfs.xfs -p with a small
 * Linux-looking tree, then given attributes by xfs_db attr_set: short-form
 * ones in the inode (user, secure, root namespaces and an ACL), a leaf block
 * with local values, remote values of 64 KiB and 3500 bytes, an access ACL
 * in the leaf, a node-form (dabtree) fork of 121 attributes, and attributes
 * on a directory and a symlink. ACL values are written over placeholders
 * (see replacePlaceholder) and on v5 the CRC of the patched structure is
 * recomputed by rewriting a field through xfs_db; xfs_repair -n must then
 * find the filesystem clean. On v4, the remote blocks of the 64 KiB value
 * are overwritten with distinct bytes so their order is checked too.
 */
export async function xfsXattrImage(dir: string, v4: boolean): Promise<XattrFixture> {
  const file = join(dir, 'xfs-file');
  await writeFile(file, 'contents\n');
  const proto = [
    '/dev/null',
    '0 0',
    'd--755 0 0',
    'etc d--755 0 0',
    `os-release ---644 0 0 ${file}`,
    '$',
    'usr d--755 0 0',
    'bin d--755 0 0',
    `tool ---755 0 0 ${file}`,
    '$',
    '$',
    `sf ---644 0 0 ${file}`,
    `leaf ---644 0 0 ${file}`,
    `node ---644 0 0 ${file}`,
    `plain ---644 0 0 ${file}`,
    'd d--755 0 0',
    '$',
    'l l--777 0 0 sf',
    '$',
  ];
  await writeFile(join(dir, 'xfs-proto'), `${proto.join('\n')}\n`);
  const img = join(dir, v4 ? 'xattrs-v4.xfs' : 'xattrs-v5.xfs');
  await writeFile(img, '');
  await truncate(img, 320 * 1024 * 1024);
  execFileSync(
    'mkfs.xfs',
    [
      '-q',
      '-f',
      // 512-byte inodes on v4 too, so the short-form attributes fit in both.
      ...(v4 ? ['-m', 'crc=0,finobt=0', '-i', 'size=512'] : []),
      '-p',
      join(dir, 'xfs-proto'),
      img,
    ],
    { stdio: 'pipe' },
  );
  const v = (n: number) => Buffer.alloc(n, 'v');
  const leafNames = Array.from({ length: 10 }, (_, i) => `leafattr${i}`);
  const nodeNames = Array.from({ length: 120 }, (_, i) => `node-attribute-with-a-long-name-${i}`);
  const accessAcl = xfsDiskAcl(ACCESS_ACL);
  const defaultAcl = xfsDiskAcl(DEFAULT_ACL);
  // xfsprogs 6.1 crashes turning an inode with no attribute fork straight into a leaf
  // on v4, so every fork starts with a small short-form attribute.
  const commands = [
    'path /sf',
    'attr_set -u -v 5 foo',
    'attr_set -s -v 3 selinux',
    'attr_set -r -v 7 tr',
    `attr_set -r -v ${accessAcl.length} SGI_ACL_FILE`,
    'path /leaf',
    'attr_set -u -v 1 a',
    ...leafNames.map((n) => `attr_set -u -v 100 ${n}`),
    'attr_set -u -v 65536 remote',
    'attr_set -r -v 3500 remote2',
    `attr_set -r -v ${accessAcl.length} SGI_ACL_FILE`,
    'path /node',
    'attr_set -u -v 1 a',
    ...nodeNames.map((n) => `attr_set -u -v 20 ${n}`),
    'path /d',
    'attr_set -u -v 1 ondir',
    `attr_set -r -v ${defaultAcl.length} SGI_ACL_DEFAULT`,
    'path /l',
    'attr_set -u -v 2 onlink',
  ];
  xfsDb(img, commands, true);

  const inodeSize = Number(/inodesize = (\d+)/.exec(xfsDb(img, ['sb 0', 'p inodesize']))![1]);
  const blockSize = Number(/blocksize = (\d+)/.exec(xfsDb(img, ['sb 0', 'p blocksize']))![1]);
  // The short-form ACLs live in their inodes; the leaf's ACL in its block 0.
  for (const [path, name, acl] of [
    ['/sf', 'SGI_ACL_FILE', accessAcl],
    ['/d', 'SGI_ACL_DEFAULT', defaultAcl],
  ] as const) {
    const gen = /core.gen = (\d+)/.exec(xfsDb(img, [`path ${path}`, 'p core.gen']))![1];
    await replacePlaceholder(img, xfsInodeByte(img, path, inodeSize), inodeSize, name, acl);
    // Rewriting a field recomputes the inode's CRC (xfs_db complains about the stale one first).
    if (!v4) rewriteField(img, [`path ${path}`], `core.gen ${gen}`, 'v3.crc');
  }
  const leaf0 = xfsAttrExtents(img, '/leaf').find((e) => e.off === 0)!;
  const count = /hdr.count = (\d+)/.exec(xfsDb(img, ['path /leaf', 'ablock 0', 'p hdr.count']))![1];
  await replacePlaceholder(
    img,
    xfsBlockByte(img, leaf0.block),
    blockSize,
    'SGI_ACL_FILE',
    accessAcl,
  );
  if (!v4) rewriteField(img, ['path /leaf', 'ablock 0'], `hdr.count ${count}`, 'hdr.info.crc');
  let remote: Buffer = v(65536);
  if (v4) {
    // Give each remote block of the 64 KiB value its own bytes (v4 remote blocks have no header or CRC).
    const list = xfsDb(img, ['path /leaf', 'ablock 0', 'p nvlist']);
    const index = /nvlist\[(\d+)\]\.name = "remote"\n/.exec(list)?.[1];
    const blk = new RegExp(`nvlist\\[${index}\\]\\.valueblk = 0x([0-9a-f]+)`).exec(list)?.[1];
    const first = blk === undefined ? Number.NaN : Number.parseInt(blk, 16);
    if (!Number.isInteger(first)) throw new Error('xfs_db shows no remote value block');
    remote = pseudoRandom(65536, 'xfs-remote');
    const extents = xfsAttrExtents(img, '/leaf');
    for (let k = 0; k * blockSize < remote.length; k++) {
      const e = extents.find((x) => first + k >= x.off && first + k < x.off + x.count)!;
      const at = xfsBlockByte(img, e.block + (first + k - e.off));
      await patchFile(img, at, remote.subarray(k * blockSize, (k + 1) * blockSize));
    }
  }
  const repair = execFileSyncStatus('xfs_repair', ['-n', '-f', img]);
  if (repair !== 0) throw new Error(`xfs_repair -n finds the built image unclean (${repair})`);

  const nodeAttrs: Record<string, Buffer> = { 'user.a': v(1) };
  for (const n of nodeNames) nodeAttrs[`user.${n}`] = v(20);
  const leafAttrs: Record<string, Buffer> = {
    'user.a': v(1),
    'user.remote': remote,
    'trusted.remote2': v(3500),
    'system.posix_acl_access': vfsAcl(ACCESS_ACL),
  };
  for (const n of leafNames) leafAttrs[`user.${n}`] = v(100);
  return {
    img,
    expect: new Map<string, Record<string, Buffer>>([
      [
        '/sf',
        {
          'user.foo': v(5),
          'security.selinux': v(3),
          'trusted.tr': v(7),
          'system.posix_acl_access': vfsAcl(ACCESS_ACL),
        },
      ],
      ['/leaf', leafAttrs],
      ['/node', nodeAttrs],
      ['/d', { 'user.ondir': v(1), 'system.posix_acl_default': vfsAcl(DEFAULT_ACL) }],
      ['/l', { 'user.onlink': v(2) }],
    ]),
    paths: [
      '/',
      '/etc',
      '/etc/os-release',
      '/usr/bin/tool',
      '/sf',
      '/leaf',
      '/node',
      '/plain',
      '/d',
      '/l',
    ],
  };
}

/** Writes a field back with xfs_db (which recomputes the structure's CRC), then checks the CRC is good. */
function rewriteField(img: string, at: readonly string[], write: string, crcField: string): void {
  spawnSync('xfs_db', ['-x', ...[...at, `write ${write}`].flatMap((c) => ['-c', c]), img], {
    stdio: 'ignore',
  });
  const crc = xfsDb(img, [...at, `p ${crcField}`]);
  if (!crc.includes('(correct)')) throw new Error(`xfs_db left a bad CRC: ${crc.trim()}`);
}

function execFileSyncStatus(cmd: string, args: readonly string[]): number {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return 0;
  } catch (error) {
    return (error as { status?: number }).status ?? -1;
  }
}
