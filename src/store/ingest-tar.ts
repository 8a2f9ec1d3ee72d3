import { open } from 'node:fs/promises';
import { FerryError } from '../errors/index.js';
import { decompressedStream, detectCompression } from './decompress-stream.js';
import type { IngestOptions, IngestStats } from './ingest-dir.js';
import type { LocalStore } from './local-store.js';
import {
  addMissingParents,
  assignHardLinks,
  checkManifest,
  checkPath,
  comparePaths,
  type Manifest,
  type ManifestEntry,
} from './manifest.js';
import type { ObjectBatch } from './object-store.js';
import { readTar, type TarEntry } from './tar-reader.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function unsafe(path: string, reason: string): FerryError {
  return new FerryError(
    'FERRY_TAR_UNSAFE_PATH',
    `Cannot ingest the tarball: member "${path.slice(0, 200)}" ${reason}`,
    {
      details: { path: path.slice(0, 200) },
    },
  );
}

/**
 * A member name as a manifest path: "./" prefixes and a trailing "/" go,
 * absolute names and ".." components are refused (a tarball that means to
 * land outside its root is hostile, not sloppy).
 */
export function memberPath(name: string): string {
  if (name.startsWith('/')) throw unsafe(name, 'is an absolute path');
  let p = name;
  while (p.startsWith('./')) p = p.slice(2);
  if (p === '.' || p === '') return '';
  p = p.replace(/\/+$/, '');
  const parts = p.split('/');
  if (parts.includes('..')) throw unsafe(name, 'climbs out of the archive root ("..")');
  const clean = parts.filter((x) => x !== '.' && x !== '');
  const out = clean.join('/');
  try {
    checkPath(out);
  } catch (error) {
    throw unsafe(name, `is not a usable path (${(error as Error).message})`);
  }
  return out;
}

/**
 * Reads a tarball (plain, gzip, xz or zstd, detected from its bytes) into the
 * store in one streaming pass: file contents go straight into objects, a
 * later member of the same path replaces an earlier one (as tar extracts),
 * missing parent directories are added (0755, root, time 0), hard links are
 * resolved to the first path of their group. The result must pass the same
 * manifest check as any other, so a member under a symlink (a write through
 * an escape) is refused. Nothing is ever written outside the store.
 */
export async function ingestTarball(
  store: LocalStore,
  path: string,
  options: IngestOptions = {},
): Promise<IngestStats> {
  const entries = new Map<string, Mutable<ManifestEntry>>();
  const hardLinks: Array<{ path: string; target: string }> = [];
  let newObjects = 0;
  let newBytes = 0;
  let files = 0;
  let bytes = 0;
  const onEntry = async (
    e: TarEntry,
    body: AsyncIterable<Buffer>,
    batch: ObjectBatch,
  ): Promise<void> => {
    const p = memberPath(e.path);
    const base = { path: p, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: 0 };
    const xattrs = Object.keys(e.xattrs).length > 0 ? { xattrs: e.xattrs } : {};
    if (p === '' && e.type !== 'dir') throw unsafe(e.path, 'names the root but is not a directory');
    switch (e.type) {
      case 'file': {
        const r = await store.objects.put(
          { kind: 'stream', stream: body, size: e.size },
          undefined,
          options.signal,
          batch,
        );
        if (r.added) {
          newObjects++;
          newBytes += r.size;
        }
        files++;
        bytes += e.size;
        options.onProgress?.({ files, bytes });
        entries.set(p, { ...base, type: 'file', size: e.size, hash: r.id, ...xattrs });
        return;
      }
      case 'link':
        hardLinks.push({ path: p, target: memberPath(e.linkname) });
        entries.delete(p);
        return;
      case 'symlink':
        if (e.linkname === '') throw unsafe(e.path, 'is a symlink with no target');
        entries.set(p, { ...base, type: 'symlink', target: e.linkname, ...xattrs });
        return;
      case 'char':
      case 'block':
        entries.set(p, {
          ...base,
          type: e.type,
          rdev: { major: e.devmajor, minor: e.devminor },
          ...xattrs,
        });
        return;
      case 'dir':
        entries.set(p, { ...base, type: 'dir', ...xattrs });
        return;
      case 'fifo':
        entries.set(p, { ...base, type: 'fifo', ...xattrs });
    }
  };
  await store.objects.withBatch((batch) =>
    readTar(
      decompressedStream(path, options.signal),
      (e, body) => onEntry(e, body, batch),
      options.signal,
    ),
  );

  // Hard links become entries sharing their target's contents.
  for (const l of hardLinks) {
    const t = entries.get(l.target);
    if (t === undefined || t.type !== 'file')
      throw unsafe(l.path, `is a hard link to "${l.target}", which is not an earlier file`);
    entries.set(l.path, { ...t, path: l.path, link: l.target });
    files++;
  }
  // Parents the archive did not list.
  addMissingParents(entries);
  if (!entries.has(''))
    entries.set('', { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', size: 0 });
  const sorted = [...entries.values()].sort((a, b) => comparePaths(a.path, b.path));
  // Each hard-link group's first path (in manifest order) holds the contents.
  const groupOf = new Map<string, string>();
  for (const e of sorted) {
    if (e.type !== 'file') continue;
    const root = e.link === undefined ? e.path : (groupOf.get(e.link) ?? e.link);
    groupOf.set(e.path, root);
  }
  assignHardLinks(
    sorted,
    (e) => e,
    (e) => groupOf.get(e.path),
  );
  const manifest: Manifest = checkManifest({ version: 1, entries: sorted });
  const put = await store.putManifest(manifest);
  if (put.added) newObjects++;
  return { revision: put.id, files, bytes, newObjects, newBytes, skipped: [] };
}

/**
 * True for a tarball: compressed (gzip, xz, zstd: ferry reads no other
 * compressed input) or with a ustar/GNU magic in its first header. Disk
 * images are neither; a raw disk that happens to hold a tar header at byte
 * 257 is read as the tar it claims to be, which the manifest checks bound.
 */
export async function looksLikeTarball(path: string): Promise<boolean> {
  if ((await detectCompression(path)) !== 'none') return true;
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    return bytesRead === 512 && head.toString('latin1', 257, 262) === 'ustar';
  } finally {
    await fh.close();
  }
}
