import { createHash } from 'node:crypto';
import { FerryError } from '../errors/index.js';

/** Caps on a manifest read from anywhere (a peer, a disk, a tarball). */
export const MANIFEST_LIMITS = {
  /** Entries in one revision (a full distribution is ~200k). */
  maxEntries: 4_000_000,
  /** Bytes of a path, and of one path component (Linux NAME_MAX). */
  maxPathBytes: 4096,
  maxNameBytes: 255,
  /** Extended attributes per entry, and bytes of one value. */
  maxXattrs: 128,
  maxXattrBytes: 64 * 1024,
  /** Bytes of a canonical manifest (read into memory whole). */
  maxManifestBytes: 1024 * 1024 * 1024,
} as const;

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

/**
 * One path of a root file tree. `path` is relative to the root, "/"-separated,
 * with no "." or ".." component; the root itself is "".
 */
export interface ManifestEntry {
  readonly path: string;
  readonly type: EntryType;
  /** Permission bits and setuid/setgid/sticky (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Modification time, nanoseconds since the epoch, as a decimal string (exact). */
  readonly mtime: string;
  /** file: bytes; others: 0. */
  readonly size: number;
  /** file: SHA-512 of the contents, lowercase hex. */
  readonly hash?: string;
  /** symlink: the target, as stored (never resolved by the store). */
  readonly target?: string;
  /** char, block: device numbers. */
  readonly rdev?: { readonly major: number; readonly minor: number };
  /** file: the earlier path this entry is a hard link of (same contents and inode). */
  readonly link?: string;
  /** Extended attributes: name -> value, base64. */
  readonly xattrs?: Readonly<Record<string, string>>;
}

export interface Manifest {
  readonly version: 1;
  /** Sorted by path (bytewise), the root first; no duplicates. */
  readonly entries: readonly ManifestEntry[];
}

const TYPES: ReadonlySet<string> = new Set(['file', 'dir', 'symlink', 'char', 'block', 'fifo']);
const HEX512 = /^[0-9a-f]{128}$/;
const MTIME = /^-?\d{1,20}$/;

/** Bytewise comparison of two paths, parents before children ("a" < "a/b" < "a-b"). */
export function comparePaths(a: string, b: string): number {
  const x = Buffer.from(a.replaceAll('/', '\0'));
  const y = Buffer.from(b.replaceAll('/', '\0'));
  return Buffer.compare(x, y);
}

function invalid(reason: string, path?: string): FerryError {
  return new FerryError('FERRY_STORE_MANIFEST_INVALID', `Cannot accept manifest: ${reason}`, {
    details: path === undefined ? {} : { path },
  });
}

/** Throws unless `path` is a safe relative path: no "", ".", "..", NUL or leading/trailing/double "/". */
export function checkPath(path: string): void {
  if (path === '') return;
  if (Buffer.byteLength(path) > MANIFEST_LIMITS.maxPathBytes)
    throw invalid('a path is too long', path.slice(0, 200));
  if (path.includes('\0')) throw invalid('a path holds a NUL byte', path);
  for (const part of path.split('/')) {
    if (part === '' || part === '.' || part === '..')
      throw invalid(`the path "${path}" is not a plain relative path`, path);
    if (Buffer.byteLength(part) > MANIFEST_LIMITS.maxNameBytes)
      throw invalid('a path component is too long', path);
  }
}

function isUint(x: unknown, max = 2 ** 32 - 1): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= max;
}

/** Checks one entry's fields; returns it with only the known fields (in canonical order). */
function checkEntry(raw: unknown): ManifestEntry {
  if (typeof raw !== 'object' || raw === null) throw invalid('an entry is not an object');
  const e = raw as Record<string, unknown>;
  const path = e.path;
  if (typeof path !== 'string') throw invalid('an entry has no path');
  checkPath(path);
  const type = e.type;
  if (typeof type !== 'string' || !TYPES.has(type))
    throw invalid('an entry has an unknown type', path);
  if (!isUint(e.mode, 0o7777)) throw invalid('a mode is out of range', path);
  if (!isUint(e.uid) || !isUint(e.gid)) throw invalid('a uid or gid is out of range', path);
  if (typeof e.mtime !== 'string' || !MTIME.test(e.mtime))
    throw invalid('an mtime is malformed', path);
  if (!isUint(e.size, Number.MAX_SAFE_INTEGER)) throw invalid('a size is out of range', path);
  const out: Record<string, unknown> = {
    path,
    type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    mtime: e.mtime,
    size: e.size,
  };
  if (type === 'file') {
    if (typeof e.hash !== 'string' || !HEX512.test(e.hash))
      throw invalid('a file has no SHA-512 hash', path);
    out.hash = e.hash;
    if (e.link !== undefined) {
      if (typeof e.link !== 'string') throw invalid('a hard link target is not a path', path);
      checkPath(e.link);
      out.link = e.link;
    }
  } else if (e.size !== 0) throw invalid('only files have a size', path);
  if (type === 'symlink') {
    if (typeof e.target !== 'string' || e.target === '' || e.target.includes('\0'))
      throw invalid('a symlink has no target', path);
    if (Buffer.byteLength(e.target) > MANIFEST_LIMITS.maxPathBytes)
      throw invalid('a symlink target is too long', path);
    out.target = e.target;
  }
  if (type === 'char' || type === 'block') {
    const r = e.rdev as { major?: unknown; minor?: unknown } | null | undefined;
    if (typeof r !== 'object' || r === null || !isUint(r.major, 0xfff) || !isUint(r.minor, 0xfffff))
      throw invalid('a device has no valid device numbers', path);
    out.rdev = { major: r.major, minor: r.minor };
  }
  if (e.xattrs !== undefined) {
    if (typeof e.xattrs !== 'object' || e.xattrs === null)
      throw invalid('xattrs is not an object', path);
    const names = Object.keys(e.xattrs).sort();
    if (names.length > MANIFEST_LIMITS.maxXattrs) throw invalid('too many xattrs', path);
    const x: Record<string, string> = {};
    for (const n of names) {
      const v = (e.xattrs as Record<string, unknown>)[n];
      if (
        n === '' ||
        n.includes('\0') ||
        typeof v !== 'string' ||
        v.length > (MANIFEST_LIMITS.maxXattrBytes * 4) / 3 + 4
      )
        throw invalid('an xattr is malformed', path);
      x[n] = v;
    }
    if (names.length > 0) out.xattrs = x;
  }
  return out as unknown as ManifestEntry;
}

/**
 * Validates a manifest from any source: every entry checked, paths sorted and
 * unique, the root present and a directory, every path's parent a directory
 * listed before it, hard links pointing at an earlier file with the same hash.
 */
export function checkManifest(raw: unknown): Manifest {
  if (typeof raw !== 'object' || raw === null) throw invalid('it is not an object');
  const m = raw as { version?: unknown; entries?: unknown };
  if (m.version !== 1) throw invalid('unknown manifest version');
  if (!Array.isArray(m.entries)) throw invalid('it has no entries');
  if (m.entries.length > MANIFEST_LIMITS.maxEntries) throw invalid('too many entries');
  const entries = m.entries.map(checkEntry);
  const byPath = new Map<string, ManifestEntry>();
  let prev: string | undefined;
  for (const e of entries) {
    if (prev !== undefined && comparePaths(prev, e.path) >= 0)
      throw invalid('paths are not sorted and unique', e.path);
    prev = e.path;
    if (e.path === '') {
      if (e.type !== 'dir') throw invalid('the root is not a directory');
    } else {
      const slash = e.path.lastIndexOf('/');
      const parent = byPath.get(slash < 0 ? '' : e.path.slice(0, slash));
      if (parent === undefined || parent.type !== 'dir')
        throw invalid('a path has no parent directory', e.path);
    }
    if (e.link !== undefined) {
      const t = byPath.get(e.link);
      if (t === undefined || t.type !== 'file' || t.link !== undefined || t.hash !== e.hash)
        throw invalid(
          'a hard link does not point at an earlier file with the same contents',
          e.path,
        );
    }
    byPath.set(e.path, e);
  }
  if (entries[0]?.path !== '') throw invalid('the root entry is missing');
  return { version: 1, entries };
}

/** The canonical bytes of a manifest: what its revision id is the hash of. */
export function canonicalManifest(m: Manifest): Buffer {
  const lines = m.entries.map((e) => JSON.stringify(checkEntry(e)));
  return Buffer.from(`{"version":1,"entries":[\n${lines.join(',\n')}\n]}\n`);
}

/** A revision id: SHA-512 of the canonical manifest, lowercase hex. */
export function revisionId(canonical: Buffer): string {
  return createHash('sha512').update(canonical).digest('hex');
}

/** Parses and checks manifest bytes from anywhere; the id is recomputed, never trusted. */
export function parseManifest(bytes: Buffer): { manifest: Manifest; id: string } {
  if (bytes.length > MANIFEST_LIMITS.maxManifestBytes) throw invalid('it is too large');
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('it is not JSON');
  }
  const manifest = checkManifest(raw);
  return { manifest, id: revisionId(canonicalManifest(manifest)) };
}

/** Sum of file sizes, counting each hard-linked file once. */
export function manifestBytes(m: Manifest): number {
  let n = 0;
  for (const e of m.entries) if (e.type === 'file' && e.link === undefined) n += e.size;
  return n;
}

/**
 * Adds the directories that paths in `entries` need and it lacks (mode 0755,
 * root, time 0): what a tarball or a set of mounts leaves out.
 */
export function addMissingParents(entries: Map<string, ManifestEntry>): void {
  for (const p of [...entries.keys()]) {
    let at = p.lastIndexOf('/');
    while (at > 0) {
      const parent = p.slice(0, at);
      if (!entries.has(parent)) {
        entries.set(parent, {
          path: parent,
          type: 'dir',
          mode: 0o755,
          uid: 0,
          gid: 0,
          mtime: '0',
          size: 0,
        });
      }
      at = parent.lastIndexOf('/');
    }
  }
}

/**
 * Hard links, in manifest order: the first file of each group keeps the
 * contents, every later one links to it. `group` names a file's group (an
 * inode, say); files without one stand alone. Returns the items whose
 * entries hold contents.
 */
export function assignHardLinks<T>(
  items: readonly T[],
  entry: (item: T) => { readonly path: string; readonly type: EntryType; link?: string },
  group: (item: T) => string | undefined,
): T[] {
  const first = new Map<string, string>();
  const holders: T[] = [];
  for (const item of items) {
    const e = entry(item);
    if (e.type !== 'file') continue;
    const g = group(item);
    const f = g === undefined ? undefined : first.get(g);
    if (f === undefined) {
      if (g !== undefined) first.set(g, e.path);
      delete e.link;
      holders.push(item);
    } else e.link = f;
  }
  return holders;
}
