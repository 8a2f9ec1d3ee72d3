import { comparePaths, type Manifest, type ManifestEntry } from './manifest.js';

export interface ManifestDiff {
  readonly added: string[];
  readonly removed: string[];
  /** Paths in both whose entry differs, with the fields that differ. */
  readonly changed: Array<{ path: string; fields: string[] }>;
  /** Bytes of file contents the newer revision holds that the older does not. */
  readonly addedBytes: number;
  readonly removedBytes: number;
  /** Bytes of files whose contents changed (their new size). */
  readonly changedBytes: number;
}

const FIELDS = [
  'type',
  'mode',
  'uid',
  'gid',
  'mtime',
  'size',
  'hash',
  'target',
  'rdev',
  'link',
  'xattrs',
] as const;

function differs(a: ManifestEntry, b: ManifestEntry): string[] {
  return FIELDS.filter((f) => JSON.stringify(a[f]) !== JSON.stringify(b[f]));
}

function contentBytes(e: ManifestEntry): number {
  return e.type === 'file' && e.link === undefined ? e.size : 0;
}

/** What changed from `a` to `b`, walking both sorted entry lists once. */
export function diffManifests(a: Manifest, b: Manifest): ManifestDiff {
  const out: ManifestDiff = {
    added: [],
    removed: [],
    changed: [],
    addedBytes: 0,
    removedBytes: 0,
    changedBytes: 0,
  };
  const d = out as { -readonly [K in keyof ManifestDiff]: ManifestDiff[K] };
  let i = 0;
  let j = 0;
  while (i < a.entries.length || j < b.entries.length) {
    const x = a.entries[i];
    const y = b.entries[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : comparePaths(x.path, y.path);
    if (c < 0 && x !== undefined) {
      d.removed.push(x.path);
      d.removedBytes += contentBytes(x);
      i++;
    } else if (c > 0 && y !== undefined) {
      d.added.push(y.path);
      d.addedBytes += contentBytes(y);
      j++;
    } else if (x !== undefined && y !== undefined) {
      const fields = differs(x, y);
      if (fields.length > 0) {
        d.changed.push({ path: x.path, fields });
        if (fields.includes('hash')) d.changedBytes += contentBytes(y);
      }
      i++;
      j++;
    }
  }
  return out;
}
