import type { LocalStore, Manifest, ManifestEntry } from '../store/index.js';
import { comparePaths } from '../store/manifest.js';
import { newestMtime } from './tree-time.js';

/** A file a render writes into the tree (fstab, a boot loader's files): its path, contents and mode. */
export interface GeneratedFile {
  readonly path: string;
  readonly content: string | Buffer;
  readonly mode: number;
}

/**
 * The revision's tree with generated files put in (replacing what was
 * there) and the directories they and mount points need. Contents go into
 * the store as ordinary objects; times are the tree's newest mtime, so the
 * edit is as deterministic as the revision.
 */
export async function editTree(
  store: LocalStore,
  manifest: Manifest,
  files: readonly GeneratedFile[],
  dirs: readonly string[],
): Promise<Manifest> {
  const mtime = newestMtime(manifest).toString();
  const byPath = new Map<string, ManifestEntry>(manifest.entries.map((e) => [e.path, e]));
  const addDir = (path: string): void => {
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const cur = byPath.get(p);
      if (cur === undefined)
        byPath.set(p, { path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0 });
    }
  };
  for (const d of dirs) addDir(d);
  for (const f of files) {
    const slash = f.path.lastIndexOf('/');
    if (slash > 0) addDir(f.path.slice(0, slash));
    const data = typeof f.content === 'string' ? Buffer.from(f.content) : f.content;
    const put = await store.objects.put({ kind: 'stream', stream: [data], size: data.length });
    // Hard links to the old file keep the old contents, as files of their own.
    for (const [p, e] of byPath) if (e.link === f.path) byPath.set(p, withoutLink(e));
    byPath.set(f.path, {
      path: f.path,
      type: 'file',
      mode: f.mode,
      uid: 0,
      gid: 0,
      mtime,
      size: data.length,
      hash: put.id,
    });
  }
  const entries = [...byPath.values()];
  entries.sort((a, b) => comparePaths(a.path, b.path));
  return { version: 1, entries };
}

function withoutLink(e: ManifestEntry): ManifestEntry {
  const { link: _link, ...rest } = e;
  return rest;
}
