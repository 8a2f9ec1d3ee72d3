import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ErrorCode } from '../../src/errors/index.js';
import { isFerryError } from '../../src/errors/index.js';
import type { FsDriver } from '../../src/inspect/fs/fs-driver.js';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';

/**
 * Hostile ext2/3/4 images, each built by patching a few bytes of a small image
 * that mke2fs made from a source tree (offsets found with debugfs, never with
 * ferry's own reader). Opening the image and walking all of it (listing every
 * directory, reading every file, resolving every symlink) must fail with
 * `expect`, quickly and with bounded memory: see test/inspect/ext-malformed.test.ts.
 */
export interface ExtMalformedCase {
  readonly name: string;
  /** Builds the hostile image inside `dir` (a scratch directory). */
  readonly build: (dir: string) => Promise<Buffer>;
  readonly expect: readonly ErrorCode[];
}

/** True when mke2fs and debugfs (e2fsprogs) are installed. */
export const haveExtTools: boolean = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v mke2fs && command -v debugfs && command -v e2fsck'], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
})();

/** Runs one debugfs request against an image file (read-only) and returns its output. */
export function debugfs(image: string, request: string): string {
  return execFileSync('debugfs', ['-R', request, image], {
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 256 * 1024 * 1024,
  }).toString('utf8');
}

/** Runs mke2fs -d to build an image of `size` (e.g. "2M") from `src`. */
export function mke2fs(image: string, src: string, size: string, args: readonly string[]): void {
  execFileSync('mke2fs', ['-q', '-F', '-E', 'root_owner=0:0', ...args, '-d', src, image, size], {
    stdio: 'ignore',
  });
}

/** The byte offset of an inode, per debugfs imap. */
export function inodeOffset(image: string, blockSize: number, path: string): number {
  const m = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(debugfs(image, `imap ${path}`));
  if (m === null) throw new Error(`debugfs imap ${path} failed`);
  return Number(m[1]) * blockSize + Number.parseInt(m[2]!, 16);
}

/** The inode number of a path, per debugfs stat. */
export function inodeNumber(image: string, path: string): number {
  const m = /Inode: (\d+)/.exec(debugfs(image, `stat ${path}`));
  if (m === null) throw new Error(`debugfs stat ${path} failed`);
  return Number(m[1]);
}

/** The physical block of logical block `l` of a file, per debugfs bmap. */
export function bmap(image: string, path: string, l: number): number {
  const n = Number(debugfs(image, `bmap ${path} ${l}`).trim());
  if (!Number.isInteger(n) || n <= 0) throw new Error(`debugfs bmap ${path} ${l} failed`);
  return n;
}

/** The extent tree of a file, per debugfs ex: one row per entry. */
export function extentRows(
  image: string,
  path: string,
): Array<{ level: number; maxLevel: number; logical: number; physical: number }> {
  const rows = [];
  for (const line of debugfs(image, `ex ${path}`).split('\n')) {
    const m = /^\s*(\d+)\/\s*(\d+)\s+\d+\/\s*\d+\s+(\d+)\s*-\s*\d+\s+(\d+)/.exec(line);
    if (m !== null) {
      rows.push({
        level: Number(m[1]),
        maxLevel: Number(m[2]),
        logical: Number(m[3]),
        physical: Number(m[4]),
      });
    }
  }
  return rows;
}

interface WalkCaps {
  readonly maxNodes: number;
  readonly maxDepth: number;
  readonly maxDirEntries: number;
  readonly maxFileBytes: number;
  /** Keep walking after a FerryError on one node (fuzzing); other errors always propagate. */
  readonly tolerant: boolean;
}

const DEFAULT_CAPS: WalkCaps = {
  maxNodes: 20_000,
  maxDepth: 32,
  maxDirEntries: 10_000,
  maxFileBytes: 1024 * 1024,
  tolerant: false,
};

/**
 * Walks a whole filesystem through FsTree and the driver: lists every
 * directory (each once), stats every entry and reads its extended
 * attributes, reads every file (capped),
 * reads and resolves every symlink. Returns how many nodes it visited and how
 * many FerryErrors it tolerated.
 */
export async function walkFs(
  driver: FsDriver<number>,
  caps: Partial<WalkCaps> = {},
): Promise<{ nodes: number; errors: number }> {
  const c = { ...DEFAULT_CAPS, ...caps };
  const tree = new FsTree(driver);
  const seenDirs = new Set<number>();
  let nodes = 0;
  let errors = 0;
  const guard = async (fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (error) {
      if (!c.tolerant || !isFerryError(error)) throw error;
      errors++;
    }
  };
  const walk = async (path: string, ref: number, depth: number): Promise<void> => {
    if (seenDirs.has(ref) || depth > c.maxDepth) return;
    seenDirs.add(ref);
    const entries = await driver.readDir(ref, c.maxDirEntries);
    for (const e of entries) {
      if (++nodes > c.maxNodes) return;
      const p = `${path === '/' ? '' : path}/${e.name}`;
      await guard(async () => {
        const st = await driver.stat(e.ref);
        await driver.readXattrs?.(e.ref);
        if (st.kind === 'file') await driver.readFile(e.ref, 0, Math.min(st.size, c.maxFileBytes));
        else if (st.kind === 'symlink') {
          await driver.readLink(e.ref);
          await tree.resolve(p, true);
        } else if (st.kind === 'dir') {
          await driver.lookup(ref, e.name);
          await walk(p, e.ref, depth + 1);
        }
      });
    }
  };
  await guard(async () => walk('/', await driver.root(), 0));
  return { nodes, errors };
}

// ---------------------------------------------------------------------------
// Base images

export type BaseKind = 'ext4' | 'ext2' | 'inline';

export interface Base {
  readonly path: string;
  readonly img: Buffer;
  readonly bs: number;
}

const BASE_ARGS: Record<BaseKind, readonly string[]> = {
  // ext4 with extents, flex_bg, metadata_csum; no journal to stay small.
  ext4: ['-t', 'ext4', '-b', '1024', '-O', '^has_journal', '-N', '256'],
  // ext2: classic block maps, a directory large enough for an indirect block.
  ext2: ['-t', 'ext2', '-b', '1024', '-N', '1024'],
  inline: ['-t', 'ext4', '-b', '1024', '-I', '256', '-O', '^has_journal,inline_data', '-N', '256'],
};

async function makeSource(src: string, kind: BaseKind, loop: boolean): Promise<void> {
  await mkdir(join(src, 'dir'), { recursive: true });
  await mkdir(join(src, 'sub', 'inner'), { recursive: true });
  await mkdir(join(src, 'small'), { recursive: true });
  await writeFile(join(src, 'hello.txt'), 'hello, ext\n');
  await writeFile(join(src, 'sub', 'inner', 'deep.txt'), 'deep\n');
  await writeFile(join(src, 'small', 'a'), 'a');
  // Ten 1 KiB data runs separated by holes: ten extents, a depth-1 tree.
  const frag = Buffer.alloc(73 * 1024);
  for (let i = 0; i < 10; i++) frag.fill(65 + i, i * 8192, i * 8192 + 1024);
  await writeFile(join(src, 'frag.bin'), frag);
  const entries = kind === 'ext2' ? 600 : 80;
  for (let i = 0; i < entries; i++) {
    await writeFile(join(src, 'dir', `entry-with-a-long-name-${String(i).padStart(4, '0')}`), '');
  }
  await symlink('hello.txt', join(src, 'link'));
  await symlink(`${'./'.repeat(40)}hello.txt`, join(src, 'slowlink'));
  if (loop) {
    await symlink('loop-b', join(src, 'loop-a'));
    await symlink('loop-a', join(src, 'loop-b'));
  }
}

let counter = 0;

/**
 * A small (2 MiB, 1 KiB blocks) image made by mke2fs -d: hello.txt, a 10-extent
 * frag.bin (an extent tree of depth 1 on ext4), a directory of 80 entries (600
 * on ext2, enough for an indirect block), nested and small directories, a fast
 * and a slow symlink, and with `loop` two symlinks pointing at each other.
 */
export async function extBaseImage(dir: string, kind: BaseKind, loop = false): Promise<Base> {
  const n = counter++;
  const src = join(dir, `src-${n}`);
  await makeSource(src, kind, loop);
  const path = join(dir, `base-${n}.img`);
  mke2fs(path, src, '2M', BASE_ARGS[kind]);
  const img = await readFile(path);
  return { path, img, bs: 1024 << img.readUInt32LE(1024 + 0x18) };
}

const SB = 1024;
/** Group descriptor table offset for 1 KiB blocks (block 2). */
const GDT = 2048;

function sbPatch(kind: BaseKind, patch: (img: Buffer) => void): (dir: string) => Promise<Buffer> {
  return async (dir) => {
    const b = await extBaseImage(dir, kind);
    patch(b.img);
    return b.img;
  };
}

function inodePatch(
  kind: BaseKind,
  path: string,
  patch: (img: Buffer, at: number, b: Base) => void,
): (dir: string) => Promise<Buffer> {
  return async (dir) => {
    const b = await extBaseImage(dir, kind);
    patch(b.img, inodeOffset(b.path, b.bs, path), b);
    return b.img;
  };
}

function dirBlockPatch(kind: BaseKind, path: string, patch: (img: Buffer, at: number) => void) {
  return async (dir: string): Promise<Buffer> => {
    const b = await extBaseImage(dir, kind);
    patch(b.img, bmap(b.path, path, 0) * b.bs);
    return b.img;
  };
}

/** i_block starts 0x28 into an inode. */
const IBLOCK = 0x28;

export const extCases: ExtMalformedCase[] = [
  // Superblock
  {
    name: 'superblock block size 2^30',
    build: sbPatch('ext4', (img) => img.writeUInt32LE(20, SB + 0x18)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'superblock with zero inodes per group',
    build: sbPatch('ext4', (img) => img.writeUInt32LE(0, SB + 0x28)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'superblock with zero blocks per group',
    build: sbPatch('ext4', (img) => img.writeUInt32LE(0, SB + 0x20)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'superblock inode size not a power of two',
    build: sbPatch('ext4', (img) => img.writeUInt16LE(200, SB + 0x58)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'superblock inode size larger than a block',
    build: sbPatch('ext4', (img) => img.writeUInt16LE(2048, SB + 0x58)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'superblock inode count beyond what the groups hold',
    build: sbPatch('ext4', (img) => img.writeUInt32LE(0xffffffff, SB + 0x00)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'superblock first data block past the start',
    build: sbPatch('ext4', (img) => img.writeUInt32LE(7, SB + 0x14)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'superblock with an unknown incompatible feature',
    build: sbPatch('ext4', (img) =>
      img.writeUInt32LE(img.readUInt32LE(SB + 0x60) | 0x40000000, SB + 0x60),
    ),
    expect: ['FERRY_FS_UNSUPPORTED'],
  },
  {
    name: 'superblock with the compression feature',
    build: sbPatch('ext4', (img) =>
      img.writeUInt32LE(img.readUInt32LE(SB + 0x60) | 0x1, SB + 0x60),
    ),
    expect: ['FERRY_FS_UNSUPPORTED'],
  },
  {
    name: 'superblock of an external journal device',
    build: sbPatch('ext4', (img) =>
      img.writeUInt32LE(img.readUInt32LE(SB + 0x60) | 0x8, SB + 0x60),
    ),
    expect: ['FERRY_FS_UNSUPPORTED'],
  },
  {
    name: 'superblock 64bit with a 48-byte group descriptor',
    build: sbPatch('ext4', (img) => {
      img.writeUInt32LE(img.readUInt32LE(SB + 0x60) | 0x80, SB + 0x60);
      img.writeUInt16LE(48, SB + 0xfe);
    }),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'superblock block count of 2^60 blocks',
    build: sbPatch('ext4', (img) => {
      img.writeUInt32LE(img.readUInt32LE(SB + 0x60) | 0x80, SB + 0x60);
      img.writeUInt16LE(64, SB + 0xfe);
      img.writeUInt32LE(2 ** 28, SB + 0x150);
    }),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'filesystem larger than its volume (truncated image)',
    build: async (dir) => {
      // Cut the image just before the last data block of frag.bin.
      const b = await extBaseImage(dir, 'ext4');
      return b.img.subarray(0, bmap(b.path, '/frag.bin', 72) * b.bs);
    },
    expect: ['FERRY_FS_CORRUPT'],
  },
  // Group descriptors
  {
    name: 'group descriptor inode table past the volume',
    build: sbPatch('ext4', (img) => img.writeUInt32LE(0xffffff00, GDT + 0x08)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'group descriptor inode table running past the end',
    build: sbPatch('ext4', (img) => img.writeUInt32LE(img.readUInt32LE(SB + 0x04) - 3, GDT + 0x08)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'root inode in a group flagged uninitialized',
    build: sbPatch('ext4', (img) =>
      img.writeUInt16LE(img.readUInt16LE(GDT + 0x12) | 1, GDT + 0x12),
    ),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'root inode that is not a directory',
    build: inodePatch('ext4', '<2>', (img, at) => img.writeUInt16LE(0x81a4, at)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'root inode not in use (mode 0)',
    build: inodePatch('ext4', '<2>', (img, at) => img.writeUInt16LE(0, at)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  // Extent trees
  {
    name: 'extent tree with a loop (a node pointing to itself)',
    build: async (dir) => {
      const b = await extBaseImage(dir, 'ext4');
      const at = inodeOffset(b.path, b.bs, '/frag.bin');
      const node = extentRows(b.path, '/frag.bin').find((r) => r.level === 0 && r.maxLevel === 1);
      if (node === undefined) throw new Error('frag.bin has no index node');
      // Root claims depth 2; the leaf node becomes an index (depth 1) whose only child is itself.
      b.img.writeUInt16LE(2, at + IBLOCK + 6);
      const leaf = node.physical * b.bs;
      b.img.writeUInt16LE(1, leaf + 2);
      b.img.writeUInt16LE(1, leaf + 6);
      b.img.writeUInt32LE(0, leaf + 12);
      b.img.writeUInt32LE(node.physical, leaf + 16);
      b.img.writeUInt16LE(0, leaf + 20);
      return b.img;
    },
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'extent tree depth 100',
    build: inodePatch('ext4', '/frag.bin', (img, at) => img.writeUInt16LE(100, at + IBLOCK + 6)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'extent header with a bad magic',
    build: inodePatch('ext4', '/hello.txt', (img, at) => img.writeUInt16LE(0x1234, at + IBLOCK)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'extent header with more entries than room',
    build: inodePatch('ext4', '/hello.txt', (img, at) => {
      img.writeUInt16LE(5, at + IBLOCK + 2);
      img.writeUInt16LE(5, at + IBLOCK + 4);
    }),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'extent beyond the volume',
    build: inodePatch('ext4', '/hello.txt', (img, at) =>
      img.writeUInt32LE(0x7fffff00, at + IBLOCK + 12 + 8),
    ),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'extent index pointing past the volume',
    build: inodePatch('ext4', '/frag.bin', (img, at) =>
      img.writeUInt32LE(0x7fffff00, at + IBLOCK + 12 + 4),
    ),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'overlapping extents',
    build: async (dir) => {
      const b = await extBaseImage(dir, 'ext4');
      const node = extentRows(b.path, '/frag.bin').find((r) => r.level === 0 && r.maxLevel === 1);
      if (node === undefined) throw new Error('frag.bin has no index node');
      // The second leaf extent starts inside the first one.
      const leaf = node.physical * b.bs;
      b.img.writeUInt16LE(8, leaf + 12 + 4);
      b.img.writeUInt32LE(4, leaf + 24);
      return b.img;
    },
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'extent of length zero',
    build: inodePatch('ext4', '/hello.txt', (img, at) =>
      img.writeUInt16LE(0, at + IBLOCK + 12 + 4),
    ),
    expect: ['FERRY_FS_CORRUPT'],
  },
  // Block maps
  {
    name: 'block map pointer past the volume',
    build: inodePatch('ext2', '/hello.txt', (img, at) =>
      img.writeUInt32LE(0x7fffff00, at + IBLOCK),
    ),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'directory with an indirect block pointing to itself',
    build: async (dir) => {
      const b = await extBaseImage(dir, 'ext2');
      const at = inodeOffset(b.path, b.bs, '/dir');
      const ind = b.img.readUInt32LE(at + IBLOCK + 12 * 4);
      if (ind === 0) throw new Error('/dir has no indirect block');
      b.img.writeUInt32LE(ind, ind * b.bs);
      return b.img;
    },
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'directory listing the same block twice',
    build: inodePatch('ext2', '/dir', (img, at) =>
      img.writeUInt32LE(img.readUInt32LE(at + IBLOCK), at + IBLOCK + 4),
    ),
    expect: ['FERRY_FS_CORRUPT'],
  },
  // Directories
  {
    name: 'dirent rec_len 0',
    build: dirBlockPatch('ext4', '/sub', (img, at) => img.writeUInt16LE(0, at + 4)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'dirent rec_len past the block end',
    build: dirBlockPatch('ext4', '/sub', (img, at) => img.writeUInt16LE(0xfff0, at + 4)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'dirent rec_len not 4-aligned',
    build: dirBlockPatch('ext4', '/sub', (img, at) => img.writeUInt16LE(13, at + 4)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'dirent name longer than its record',
    build: dirBlockPatch('ext4', '/sub', (img, at) => img.writeUInt8(200, at + 6)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'dirent naming an inode past the last',
    build: dirBlockPatch('ext4', '/sub', (img, at) => img.writeUInt32LE(0x7fffffff, at + 12 + 12)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'dirent naming a free inode',
    build: dirBlockPatch('ext4', '/sub', (img, at) => img.writeUInt32LE(200, at + 12 + 12)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'huge directory size',
    build: inodePatch('ext4', '/dir', (img, at) => img.writeUInt32LE(0xfffffc00, at + 0x04)),
    expect: ['FERRY_FS_LIMIT'],
  },
  // Symlinks
  {
    name: 'symlink loop',
    build: async (dir) => (await extBaseImage(dir, 'ext4', true)).img,
    expect: ['FERRY_FS_SYMLINK_LOOP'],
  },
  {
    name: 'fast symlink claiming more than its 60 bytes',
    build: inodePatch('ext4', '/link', (img, at) => img.writeUInt32LE(200, at + 0x04)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'symlink target larger than 4 KiB',
    build: inodePatch('ext4', '/slowlink', (img, at) => img.writeUInt32LE(5000, at + 0x04)),
    expect: ['FERRY_FS_LIMIT'],
  },
  // Inline data
  {
    name: 'inline data size larger than the inode',
    build: inodePatch('inline', '/hello.txt', (img, at) => img.writeUInt32LE(1000, at + 0x04)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'inline data attribute overrunning the inode',
    build: inodePatch('inline', '/hello.txt', (img, at) => {
      // The first in-inode attribute (system.data) starts after the 4-byte header.
      const first = at + 128 + img.readUInt16LE(at + 0x80) + 4;
      if (img[first + 1] !== 7 || img.toString('latin1', first + 16, first + 20) !== 'data') {
        throw new Error('the first in-inode attribute is not system.data');
      }
      img.writeUInt32LE(4000, first + 8);
    }),
    expect: ['FERRY_FS_CORRUPT'],
  },
  {
    name: 'inline directory with a bad rec_len',
    build: inodePatch('inline', '/small', (img, at) => img.writeUInt16LE(200, at + IBLOCK + 4 + 4)),
    expect: ['FERRY_FS_CORRUPT'],
  },
  // Features
  {
    name: 'encrypted file',
    build: inodePatch('ext4', '/hello.txt', (img, at) => {
      img.writeUInt32LE(img.readUInt32LE(SB + 0x60) | 0x10000, SB + 0x60);
      img.writeUInt32LE(img.readUInt32LE(at + 0x20) | 0x800, at + 0x20);
    }),
    expect: ['FERRY_FS_UNSUPPORTED'],
  },
];
