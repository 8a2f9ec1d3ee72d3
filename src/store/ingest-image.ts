import { openImage } from '../disk/index.js';
import { FerryError } from '../errors/index.js';
import { type FsTree, openLinuxTrees } from '../inspect/index.js';
import type { IngestOptions, IngestStats } from './ingest-dir.js';
import type { LocalStore } from './local-store.js';
import {
  addMissingParents,
  assignHardLinks,
  checkManifest,
  comparePaths,
  type Manifest,
  type ManifestEntry,
} from './manifest.js';
import type { ObjectBatch } from './object-store.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Entries one directory may hold, and how deep a tree may go (hostile filesystems). */
const MAX_DIR_ENTRIES = 1_000_000;
const MAX_DEPTH = 256;
const CHUNK = 1024 * 1024;

function corrupt(message: string): FerryError {
  return new FerryError('FERRY_FS_CORRUPT', `Cannot ingest the image: ${message}`);
}

/**
 * Reads the Linux root of a disk image (any format ferry reads) and the
 * filesystems its fstab mounts into the store, through inspect's read-only
 * filesystem drivers: nothing is mounted, nothing runs, every structure is
 * bounds-checked by the driver. A directory reached twice (a cycle in a
 * hostile filesystem) or a name that is not a plain name is an error.
 * Extended attributes come from the drivers that read them (ext2/3/4, XFS),
 * named and encoded as a directory ingest of the mounted filesystem would
 * record them (POSIX ACLs in the VFS form); vfat and NTFS give none.
 */
export async function ingestImage(
  store: LocalStore,
  path: string,
  options: IngestOptions = {},
): Promise<IngestStats> {
  const image = await openImage(
    path,
    options.signal === undefined ? {} : { signal: options.signal },
  );
  try {
    const trees = await openLinuxTrees(image);
    if (trees === null) {
      throw new FerryError(
        'FERRY_STORE_SOURCE_UNSUPPORTED',
        `Cannot ingest ${path}: ferry finds no single Linux root filesystem in it`,
        {
          hint: 'Run ferry inspect on it to see what it holds',
        },
      );
    }
    const entries = new Map<string, Mutable<ManifestEntry>>();
    /** Files with more than one link: path -> "tree:node", to group them. */
    const inodeKeys = new Map<string, string>();
    const stats = { files: 0, bytes: 0, newObjects: 0, newBytes: 0 };
    const skipped: string[] = [];
    await store.objects.withBatch(async (batch) => {
      await walk(store, trees.root, '', 0, entries, inodeKeys, batch, stats, skipped, options);
      for (const m of trees.mounts) {
        const at = m.mountPoint.replace(/^\/+|\/+$/g, '');
        if (at === '' || at.split('/').some((p) => p === '..' || p === '.')) continue;
        // What the root holds under a mount point is hidden by the mounted filesystem.
        for (const k of [...entries.keys()]) {
          if (k === at || k.startsWith(`${at}/`)) {
            entries.delete(k);
            inodeKeys.delete(k);
          }
        }
        await walk(
          store,
          m.tree,
          at,
          entries.size + 1,
          entries,
          inodeKeys,
          batch,
          stats,
          skipped,
          options,
        );
      }
    });
    // Parents of mount points the root does not have.
    addMissingParents(entries);
    const sorted = [...entries.values()].sort((a, b) => comparePaths(a.path, b.path));
    // Hard links: the first path of each group (in manifest order) holds the contents.
    assignHardLinks(
      sorted,
      (e) => e,
      (e) => inodeKeys.get(e.path),
    );
    const manifest: Manifest = checkManifest({ version: 1, entries: sorted });
    const put = await store.putManifest(manifest);
    if (put.added) stats.newObjects++;
    return { revision: put.id, ...stats, skipped };
  } finally {
    await image.close();
  }
}

/** A node's extended attributes as manifest xattrs (name -> base64, sorted), or undefined when it has none. */
async function readXattrs(
  d: FsTree['driver'],
  ref: unknown,
): Promise<Record<string, string> | undefined> {
  if (d.readXattrs === undefined) return undefined;
  const list = await d.readXattrs(ref);
  if (list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const x of list) out[x.name] = x.value.toString('base64');
  return out;
}

async function walk(
  store: LocalStore,
  tree: FsTree,
  prefix: string,
  treeId: number,
  entries: Map<string, Mutable<ManifestEntry>>,
  inodeKeys: Map<string, string>,
  batch: ObjectBatch,
  stats: { files: number; bytes: number; newObjects: number; newBytes: number },
  skipped: string[],
  options: IngestOptions,
): Promise<void> {
  const d = tree.driver;
  const seenDirs = new Set<unknown>();
  const visit = async (ref: unknown, path: string, depth: number): Promise<void> => {
    if (options.signal?.aborted)
      throw new FerryError('FERRY_ABORTED', 'Cannot ingest: the operation was aborted');
    if (depth > MAX_DEPTH)
      throw corrupt(`the tree is deeper than ${MAX_DEPTH} directories at ${path}`);
    const st = await d.stat(ref);
    const xattrs = await readXattrs(d, ref);
    const base = {
      path,
      mode: (st.mode ?? (st.kind === 'dir' ? 0o755 : 0o644)) & 0o7777,
      uid: st.uid ?? 0,
      gid: st.gid ?? 0,
      mtime: st.mtimeNs ?? (BigInt(Math.trunc(st.mtime ?? 0)) * 1_000_000_000n).toString(),
      size: 0,
      ...(xattrs === undefined ? {} : { xattrs }),
    };
    if (st.kind === 'dir') {
      if (seenDirs.has(ref))
        throw corrupt(`the directory ${path || '/'} is reached twice (a cycle)`);
      seenDirs.add(ref);
      entries.set(path, { ...base, type: 'dir' });
      const children = await d.readDir(ref, MAX_DIR_ENTRIES);
      for (const c of children) {
        if (
          c.name === '' ||
          c.name === '.' ||
          c.name === '..' ||
          c.name.includes('/') ||
          c.name.includes('\0')
        ) {
          throw corrupt(
            `a directory entry in ${path || '/'} has the name "${c.name.slice(0, 80)}"`,
          );
        }
        await visit(c.ref, path === '' ? c.name : `${path}/${c.name}`, depth + 1);
      }
    } else if (st.kind === 'file') {
      const size = st.size;
      const chunks = async function* (): AsyncGenerator<Buffer> {
        for (let off = 0; off < size; off += CHUNK)
          yield await d.readFile(ref, off, Math.min(CHUNK, size - off));
      };
      const r = await store.objects.put(
        { kind: 'stream', stream: chunks(), size },
        undefined,
        options.signal,
        batch,
      );
      if (r.added) {
        stats.newObjects++;
        stats.newBytes += r.size;
      }
      stats.files++;
      stats.bytes += size;
      entries.set(path, { ...base, type: 'file', size, hash: r.id });
      if ((st.links ?? 1) > 1) inodeKeys.set(path, `${treeId}:${String(ref)}`);
    } else if (st.kind === 'symlink') {
      entries.set(path, { ...base, type: 'symlink', target: await d.readLink(ref) });
    } else if ((st.special === 'char' || st.special === 'block') && st.rdev !== undefined) {
      entries.set(path, { ...base, type: st.special, rdev: st.rdev });
    } else if (st.special === 'fifo') {
      entries.set(path, { ...base, type: 'fifo' });
    } else {
      skipped.push(path);
    }
  };
  const root = await d.root();
  await visit(root, prefix, 0);
}
