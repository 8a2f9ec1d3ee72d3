import type { BigIntStats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { workerPool } from '../util/ordered-pool.js';
import type { LocalStore } from './local-store.js';
import {
  assignHardLinks,
  comparePaths,
  MANIFEST_LIMITS,
  type Manifest,
  type ManifestEntry,
} from './manifest.js';
import { readXattrs, xattrsSupported } from './xattrs.js';

export interface IngestStats {
  readonly revision: string;
  readonly files: number;
  readonly bytes: number;
  readonly newObjects: number;
  readonly newBytes: number;
  /** Paths left out (sockets), and notes on what could not be read, for the caller to report. */
  readonly skipped: readonly string[];
}

export interface IngestOptions {
  /** Files hashed and stored at once (default 4; memory: 2 MiB per file in flight). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: { files: number; bytes: number }) => void;
  /**
   * The stream's newest revision, as a hint: a file with the same path, size
   * and mtime is hashed before anything is written, since it is most likely
   * stored already. Contents are hashed either way; the hint saves a write.
   */
  readonly previous?: Manifest;
}

/** lstat calls in flight while walking a directory. */
const WALK_CONCURRENCY = 16;

interface Pending {
  entry: Omit<ManifestEntry, 'hash' | 'link'> & { hash?: string; link?: string };
  abs: string;
  inode: string | null;
}

/**
 * Reads a directory tree into the store: one lstat walk (symlinks are
 * recorded, never followed; nothing outside the tree is opened), then file
 * contents hashed and stored by `concurrency` workers, then the manifest.
 * Returns the revision id; the caller commits it to a stream.
 */
export async function ingestDirectory(
  store: LocalStore,
  root: string,
  options: IngestOptions = {},
): Promise<IngestStats> {
  const top = await lstat(root, { bigint: true }).catch((error: unknown) => {
    throw new FerryError('FERRY_NOT_FOUND', `Cannot ingest ${root}: it does not exist`, {
      cause: error,
    });
  });
  if (!top.isDirectory()) {
    throw new FerryError('FERRY_USAGE', `Cannot ingest ${root}: it is not a directory`);
  }
  const pending: Pending[] = [];
  const skipped: string[] = [];
  const statOf = (abs: string): Promise<BigIntStats> => lstat(abs, { bigint: true });
  const visit = async (abs: string, rel: string, known?: BigIntStats): Promise<void> => {
    if (options.signal?.aborted)
      throw new FerryError('FERRY_ABORTED', 'Cannot ingest: the operation was aborted');
    const st = known ?? (await statOf(abs));
    if (pending.length >= MANIFEST_LIMITS.maxEntries) {
      throw new FerryError(
        'FERRY_STORE_MANIFEST_INVALID',
        `Cannot ingest ${root}: over ${MANIFEST_LIMITS.maxEntries} entries`,
      );
    }
    const xattrs = readXattrs(abs);
    const base = {
      path: rel,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: st.mtimeNs.toString(),
      size: 0,
      ...(xattrs === undefined ? {} : { xattrs }),
    };
    if (st.isDirectory()) {
      pending.push({ entry: { ...base, type: 'dir' }, abs, inode: null });
      const names = await readdir(abs);
      // The children's lstat calls run WALK_CONCURRENCY at a time; the walk itself stays depth-first.
      const stats = new Array<BigIntStats>(names.length);
      await workerPool(names.keys(), WALK_CONCURRENCY, async (i) => {
        stats[i] = await statOf(join(abs, names[i]!));
      });
      for (const [i, name] of names.entries()) {
        await visit(join(abs, name), rel === '' ? name : `${rel}/${name}`, stats[i]);
      }
    } else if (st.isFile()) {
      pending.push({
        entry: { ...base, type: 'file', size: Number(st.size) },
        abs,
        inode: st.nlink > 1n ? `${st.dev}:${st.ino}` : null,
      });
    } else if (st.isSymbolicLink()) {
      pending.push({
        entry: { ...base, type: 'symlink', target: await readlink(abs) },
        abs,
        inode: null,
      });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const rdev = Number(st.rdev);
      pending.push({
        entry: {
          ...base,
          type: st.isCharacterDevice() ? 'char' : 'block',
          rdev: { major: (rdev >> 8) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) },
        },
        abs,
        inode: null,
      });
    } else if (st.isFIFO()) {
      pending.push({ entry: { ...base, type: 'fifo' }, abs, inode: null });
    } else {
      // Sockets belong to running programs, not to images.
      skipped.push(rel);
    }
  };
  await visit(root, '');
  if (!xattrsSupported()) skipped.push('(extended attributes: the native binding is not built)');
  pending.sort((a, b) => comparePaths(a.entry.path, b.entry.path));

  // Hard links: the first path (in manifest order) holds the contents, the others link to it.
  const primaries = assignHardLinks(
    pending,
    (p) => p.entry,
    (p) => p.inode ?? undefined,
  );
  const hints = new Map<string, { size: number; mtime: string; hash: string }>();
  for (const e of options.previous?.entries ?? [])
    if (e.type === 'file' && e.hash !== undefined)
      hints.set(e.path, { size: e.size, mtime: e.mtime, hash: e.hash });
  const holderOf = new Map<string, Pending>();
  for (const p of primaries) if (p.inode !== null) holderOf.set(p.inode, p);
  let newObjects = 0;
  let newBytes = 0;
  let doneFiles = 0;
  let doneBytes = 0;
  // Every new object durable and visible before the manifest that names them.
  await store.objects.withBatch((batch) =>
    workerPool(primaries, options.concurrency ?? 4, async (p) => {
      const was = hints.get(p.entry.path);
      const likely =
        was !== undefined && was.size === p.entry.size && was.mtime === p.entry.mtime
          ? was.hash
          : undefined;
      const r = await store.objects.put(
        {
          kind: 'file',
          path: p.abs,
          size: p.entry.size,
          ...(likely === undefined ? {} : { likely }),
        },
        undefined,
        options.signal,
        batch,
      );
      p.entry.hash = r.id;
      if (r.added) {
        newObjects++;
        newBytes += r.size;
      }
      doneFiles++;
      doneBytes += r.size;
      options.onProgress?.({ files: doneFiles, bytes: doneBytes });
    }),
  );
  for (const p of pending) {
    const hash = p.inode === null ? undefined : holderOf.get(p.inode)?.entry.hash;
    if (p.entry.link !== undefined && hash !== undefined) p.entry.hash = hash;
  }
  const manifest: Manifest = { version: 1, entries: pending.map((p) => p.entry as ManifestEntry) };
  const put = await store.putManifest(manifest);
  if (put.added) newObjects++;
  return {
    revision: put.id,
    files: primaries.length + pending.filter((p) => p.entry.link !== undefined).length,
    bytes: primaries.reduce((s, p) => s + p.entry.size, 0),
    newObjects,
    newBytes,
    skipped,
  };
}
