import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import {
  chmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  symlink,
  utimes,
} from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../errors/index.js';
import type { Manifest, ManifestEntry } from './manifest.js';
import type { ObjectReader } from './store-reader.js';
import { writeXattrs } from './xattrs.js';

const execFileAsync = promisify(execFile);

export interface ExportOptions {
  readonly signal?: AbortSignal;
}

export interface ExportResult {
  readonly entries: number;
  readonly bytes: number;
  /** Entries that need root to recreate (devices, ownership) and were left out or left owned by us. */
  readonly skipped: readonly string[];
}

function unsafe(message: string, path: string): FerryError {
  return new FerryError('FERRY_STORE_EXPORT_UNSAFE', `Cannot export to ${path}: ${message}`, {
    details: { path },
  });
}

function mtimeOf(e: ManifestEntry): Date {
  // Millisecond precision is what Date carries; utimes takes it as seconds.
  return new Date(Number(BigInt(e.mtime) / 1_000_000n));
}

/**
 * Recreates a revision's tree under `dest`, which must not exist or be an
 * empty directory. The manifest was checked (relative paths, parents before
 * children, no component through a symlink), and every file is created with
 * O_EXCL | O_NOFOLLOW, so nothing is written outside `dest` or through a
 * link. Ownership and device nodes are restored when running as root;
 * directory modes and times are set last, deepest first.
 */
export async function exportDirectory(
  store: { readonly objects: ObjectReader },
  manifest: Manifest,
  dest: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const st = await lstat(dest).catch(() => null);
  if (st !== null) {
    if (!st.isDirectory()) throw unsafe('it exists and is not a directory', dest);
    if ((await readdir(dest)).length > 0) throw unsafe('the directory is not empty', dest);
  } else {
    await mkdir(dest, { recursive: true });
  }
  const root = process.getuid?.() === 0;
  const skipped: string[] = [];
  let bytes = 0;
  const dirs: ManifestEntry[] = [];
  for (const e of manifest.entries) {
    if (options.signal?.aborted)
      throw new FerryError('FERRY_ABORTED', 'Cannot export: the operation was aborted');
    const abs = e.path === '' ? dest : join(dest, e.path);
    switch (e.type) {
      case 'dir':
        if (e.path !== '') await mkdir(abs, { mode: 0o700 });
        dirs.push(e);
        continue;
      case 'file':
        if (e.link !== undefined) {
          await link(join(dest, e.link), abs);
          continue;
        }
        await writeObject(store, e.hash!, abs, options.signal);
        bytes += e.size;
        break;
      case 'symlink':
        await symlink(e.target!, abs);
        break;
      case 'fifo':
      case 'char':
      case 'block':
        if (!root && e.type !== 'fifo') {
          skipped.push(e.path);
          continue;
        }
        await execFileAsync('mknod', [
          abs,
          e.type === 'fifo' ? 'p' : e.type === 'char' ? 'c' : 'b',
          ...(e.type === 'fifo' ? [] : [String(e.rdev!.major), String(e.rdev!.minor)]),
        ]);
        break;
    }
    await applyMeta(abs, e, root, skipped);
  }
  for (const d of dirs.reverse())
    await applyMeta(d.path === '' ? dest : join(dest, d.path), d, root, skipped);
  if (
    !root &&
    manifest.entries.some((e) => e.uid !== process.getuid?.() || e.gid !== process.getgid?.())
  ) {
    skipped.push('(ownership: not root)');
  }
  return { entries: manifest.entries.length, bytes, skipped };
}

async function writeObject(
  store: { readonly objects: ObjectReader },
  id: string,
  path: string,
  signal?: AbortSignal,
): Promise<void> {
  const fh = await open(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    for await (const chunk of store.objects.read(id, signal)) {
      let done = 0;
      while (done < chunk.length)
        done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
}

async function applyMeta(
  path: string,
  e: ManifestEntry,
  root: boolean,
  skipped: string[],
): Promise<void> {
  if (root) await lchown(path, e.uid, e.gid);
  if (e.xattrs !== undefined) {
    for (const name of writeXattrs(path, e.xattrs)) skipped.push(`${e.path} (xattr ${name})`);
  }
  const t = mtimeOf(e);
  if (e.type === 'symlink') {
    await lutimes(path, t, t);
    return;
  }
  // chmod after chown: chown clears setuid/setgid bits.
  await chmod(path, e.mode);
  await utimes(path, t, t);
}
