import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { FerryError } from '../errors/index.js';
import {
  canonicalManifest,
  MANIFEST_LIMITS,
  type Manifest,
  manifestBytes,
  parseManifest,
  revisionId,
} from './manifest.js';
import { LocalObjectStore } from './object-store.js';
import { withLock } from './store-lock.js';

/** One revision of a stream, as its ref file records it. */
export interface RevisionRecord {
  readonly id: string;
  /** ISO 8601, when it was committed. */
  readonly created: string;
  readonly files: number;
  readonly bytes: number;
  /** What it was ingested from (a path, for people). */
  readonly source: string | null;
}

interface StreamFile {
  readonly format: 'ferry-stream';
  readonly version: 1;
  readonly stream: string;
  readonly revisions: RevisionRecord[];
}

const STREAM_NAME = /^[a-z0-9][a-z0-9._-]{0,63}(\/[a-z0-9][a-z0-9._-]{0,63}){0,7}$/;

export function checkStreamName(name: string): void {
  if (!STREAM_NAME.test(name) || name.split('/').some((p) => p === '.' || p === '..')) {
    throw new FerryError(
      'FERRY_STORE_NAME_INVALID',
      `Cannot use stream name "${name.slice(0, 100)}": use lowercase letters, digits, ".", "_" and "-", in up to 8 "/"-separated parts`,
      { details: { name: name.slice(0, 100) } },
    );
  }
}

/** The default store: $FERRY_STORE, else $XDG_DATA_HOME/ferry/store, else ~/.local/share/ferry/store. */
export function defaultStoreDir(): string {
  if (process.env.FERRY_STORE) return process.env.FERRY_STORE;
  const data = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'ferry', 'store');
}

/**
 * Writes `data` to `path` atomically: a temporary file (beside it, or `tmp`
 * on the same file system), fsync, rename.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Buffer,
  tmpPath?: string,
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tmpPath ?? `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (error) {
    await unlink(tmp).catch(() => {});
    throw error;
  }
}

export interface GcOptions {
  /** Revisions kept per stream, newest first (default: all). */
  readonly keep?: number;
  /** Objects younger than this are never swept: an ingest may be about to commit them (default 1 h). */
  readonly graceSeconds?: number;
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
}

export interface GcResult {
  readonly removedRevisions: Array<{ stream: string; id: string }>;
  readonly removedObjects: number;
  readonly removedBytes: number;
  readonly keptObjects: number;
}

/**
 * A store in a local directory:
 *
 *   store.json                 format marker
 *   objects/ab/<hex>           file contents and manifests, by SHA-512
 *   streams/<name>.json        a stream's revisions, oldest first
 *   pins/<revision id>         revisions that must survive GC (published images)
 *   tmp/                       objects being written
 *   lock                       held while refs change
 *
 * A manifest is itself an object: its canonical bytes, whose SHA-512 is the
 * revision id. Objects are written before the ref that names them, and refs
 * are rewritten atomically under the lock, so a crash at any point leaves
 * every committed revision whole.
 */
export class LocalStore {
  readonly root: string;
  readonly objects: LocalObjectStore;

  private constructor(root: string) {
    this.root = root;
    this.objects = new LocalObjectStore(root);
  }

  static async open(root: string = defaultStoreDir()): Promise<LocalStore> {
    const marker = join(root, 'store.json');
    try {
      const m = JSON.parse(await readFile(marker, 'utf8')) as { format?: string; version?: number };
      if (m.format !== 'ferry-store' || m.version !== 1) {
        throw new FerryError(
          'FERRY_STORE_NOT_FOUND',
          `Cannot open store ${root}: store.json is not a ferry store v1`,
        );
      }
    } catch (error) {
      if (error instanceof FerryError) throw error;
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new FerryError(
          'FERRY_STORE_NOT_FOUND',
          `Cannot open store ${root}: store.json is unreadable`,
          { cause: error },
        );
      }
      await mkdir(root, { recursive: true });
      await writeFileAtomic(marker, `${JSON.stringify({ format: 'ferry-store', version: 1 })}\n`);
    }
    for (const d of ['objects', 'streams', 'pins', 'tmp'])
      await mkdir(join(root, d), { recursive: true });
    return new LocalStore(root);
  }

  #lock<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withLock(join(this.root, 'lock'), fn, signal === undefined ? {} : { signal });
  }

  #streamPath(stream: string): string {
    checkStreamName(stream);
    return join(this.root, 'streams', `${stream}.json`);
  }

  /** Stores a manifest (as an object) and returns its revision id. */
  async putManifest(m: Manifest): Promise<{ id: string; added: boolean }> {
    const bytes = canonicalManifest(m);
    const id = revisionId(bytes);
    const r = await this.objects.put({ kind: 'stream', stream: [bytes], size: bytes.length }, id);
    return { id, added: r.added };
  }

  /** Reads a revision's manifest, verified (hash, then every field). */
  async getManifest(id: string, signal?: AbortSignal): Promise<Manifest> {
    const bytes = await this.objects.readAll(id, MANIFEST_LIMITS.maxManifestBytes, signal);
    const parsed = parseManifest(bytes);
    if (parsed.id !== id) {
      throw new FerryError(
        'FERRY_STORE_MANIFEST_INVALID',
        `Cannot read revision ${id.slice(0, 16)}…: its manifest is not canonical`,
      );
    }
    return parsed.manifest;
  }

  async streams(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(join(dir, e.name), `${prefix}${e.name}/`);
        else if (e.name.endsWith('.json')) out.push(prefix + e.name.slice(0, -5));
      }
    };
    await walk(join(this.root, 'streams'), '');
    return out.filter((n) => STREAM_NAME.test(n)).sort();
  }

  async #readStream(stream: string): Promise<StreamFile | null> {
    let text: string;
    try {
      text = await readFile(this.#streamPath(stream), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const f = JSON.parse(text) as StreamFile;
    if (f.format !== 'ferry-stream' || f.version !== 1 || !Array.isArray(f.revisions)) {
      throw new FerryError(
        'FERRY_STORE_MANIFEST_INVALID',
        `Cannot read stream ${stream}: its ref file is malformed`,
      );
    }
    return f;
  }

  async #writeStream(f: StreamFile): Promise<void> {
    const path = this.#streamPath(f.stream);
    if (f.revisions.length === 0) {
      await unlink(path).catch(() => {});
      return;
    }
    await writeFileAtomic(path, `${JSON.stringify(f, null, 2)}\n`);
  }

  /** A stream's revisions, oldest first; FERRY_STORE_NOT_FOUND when there is no such stream. */
  async revisions(stream: string): Promise<RevisionRecord[]> {
    const f = await this.#readStream(stream);
    if (f === null)
      throw new FerryError('FERRY_STORE_NOT_FOUND', `Cannot find stream ${stream}`, {
        details: { stream },
      });
    return f.revisions;
  }

  /**
   * Appends revision `id` to `stream`, unless it is already the stream's
   * newest (ingesting the same tree twice changes nothing). Every object the
   * manifest names must be present: checked under the lock, so GC cannot
   * sweep them in between.
   */
  async commit(
    stream: string,
    id: string,
    source: string | null,
    signal?: AbortSignal,
  ): Promise<{ record: RevisionRecord; unchanged: boolean }> {
    return this.#append(
      stream,
      id,
      (m) => recordOf(id, m, new Date().toISOString(), source),
      signal,
    );
  }

  /** Appends a record made elsewhere (replication keeps its time and source), with the same checks. */
  async commitRecord(
    stream: string,
    record: RevisionRecord,
    signal?: AbortSignal,
  ): Promise<{ record: RevisionRecord; unchanged: boolean }> {
    // Only the time and source are taken from the sender; the counts come from the manifest.
    const created =
      typeof record.created === 'string' && !Number.isNaN(Date.parse(record.created))
        ? record.created
        : new Date().toISOString();
    const source = typeof record.source === 'string' ? record.source.slice(0, 4096) : null;
    return this.#append(stream, record.id, (m) => recordOf(record.id, m, created, source), signal);
  }

  async #append(
    stream: string,
    id: string,
    makeRecord: (m: Manifest) => RevisionRecord,
    signal?: AbortSignal,
  ): Promise<{ record: RevisionRecord; unchanged: boolean }> {
    checkStreamName(stream);
    const manifest = await this.getManifest(id, signal);
    return this.#lock(async () => {
      for (const e of manifest.entries) {
        if (e.type === 'file' && e.link === undefined && !(await this.objects.has(e.hash!))) {
          throw new FerryError(
            'FERRY_STORE_NOT_FOUND',
            `Cannot commit revision ${id.slice(0, 16)}…: object for ${e.path} is missing`,
            {
              details: { path: e.path },
            },
          );
        }
      }
      const f = (await this.#readStream(stream)) ?? {
        format: 'ferry-stream',
        version: 1,
        stream,
        revisions: [],
      };
      const last = f.revisions[f.revisions.length - 1];
      if (last?.id === id) return { record: last, unchanged: true };
      const record = makeRecord(manifest);
      await this.#writeStream({ ...f, revisions: [...f.revisions, record] });
      return { record, unchanged: false };
    }, signal);
  }

  /** "STREAM" (newest), "STREAM@ID" or "STREAM@PREFIX" (at least 8 hex digits) to its record. */
  async resolve(ref: string): Promise<{ stream: string; record: RevisionRecord }> {
    return resolveRef(ref, (stream) => this.revisions(stream));
  }

  /** Removes a revision (every record of it) from a stream; its objects go at the next GC. */
  async removeRevision(stream: string, id: string, signal?: AbortSignal): Promise<void> {
    await this.#lock(async () => {
      const f = await this.#readStream(stream);
      if (f === null || !f.revisions.some((r) => r.id === id)) {
        throw new FerryError(
          'FERRY_STORE_NOT_FOUND',
          `Cannot remove ${stream}@${id.slice(0, 16)}: no such revision`,
        );
      }
      await this.#writeStream({ ...f, revisions: f.revisions.filter((r) => r.id !== id) });
    }, signal);
  }

  /** Marks a revision as in use outside the store (a published image): GC never removes it. */
  async pin(id: string, reason: string): Promise<void> {
    await this.getManifest(id);
    await writeFileAtomic(join(this.root, 'pins', id), `${reason}\n`);
  }

  async unpin(id: string): Promise<void> {
    await unlink(join(this.root, 'pins', id)).catch(() => {});
  }

  async pins(): Promise<string[]> {
    return (await readdir(join(this.root, 'pins')).catch(() => [])).filter((n) =>
      /^[0-9a-f]{128}$/.test(n),
    );
  }

  /**
   * Drops revisions beyond `keep` per stream (never a pinned one), then removes
   * objects no remaining revision or pin references. Refs are rewritten first,
   * atomically; objects go last; so a GC killed at any point loses no object a
   * kept revision needs, and the next GC finishes the sweep.
   */
  async gc(options: GcOptions = {}): Promise<GcResult> {
    const graceMs = (options.graceSeconds ?? 3600) * 1000;
    const started = Date.now();
    return this.#lock(async () => {
      const pinned = new Set(await this.pins());
      const removedRevisions: Array<{ stream: string; id: string }> = [];
      const live = new Set<string>(pinned);
      for (const stream of await this.streams()) {
        const f = await this.#readStream(stream);
        if (f === null) continue;
        const keep = options.keep ?? Number.POSITIVE_INFINITY;
        const newestFirst = [...f.revisions].reverse();
        const distinct: string[] = [];
        for (const r of newestFirst) if (!distinct.includes(r.id)) distinct.push(r.id);
        const kept = new Set(distinct.filter((id, i) => i < keep || pinned.has(id)));
        for (const id of distinct) if (!kept.has(id)) removedRevisions.push({ stream, id });
        for (const id of kept) live.add(id);
        if (!options.dryRun && kept.size < distinct.length) {
          await this.#writeStream({ ...f, revisions: f.revisions.filter((r) => kept.has(r.id)) });
        }
      }
      const marked = new Set<string>();
      for (const id of live) {
        marked.add(id);
        const m = await this.getManifest(id, options.signal);
        for (const e of m.entries) if (e.hash !== undefined) marked.add(e.hash);
      }
      let removedObjects = 0;
      let removedBytes = 0;
      let keptObjects = 0;
      for await (const id of this.objects.list()) {
        if (marked.has(id)) {
          keptObjects++;
          continue;
        }
        const st = await stat(this.objects.pathOf(id)).catch(() => null);
        if (st === null) continue;
        if (started - st.mtimeMs < graceMs) {
          keptObjects++;
          continue;
        }
        if (!options.dryRun) await this.objects.delete(id);
        removedObjects++;
        removedBytes += st.size;
      }
      // Temporary files of ingests and uploads that never finished (killed, or never committed).
      for (const name of await readdir(join(this.root, 'tmp')).catch(() => [] as string[])) {
        const p = join(this.root, 'tmp', name);
        const st = await stat(p).catch(() => null);
        if (st === null || started - st.mtimeMs < graceMs) continue;
        if (!options.dryRun) await unlink(p).catch(() => {});
        removedBytes += st.size;
      }
      return { removedRevisions, removedObjects, removedBytes, keptObjects };
    }, options.signal);
  }
}

/** A revision record for manifest `m`: its file count and content bytes. */
function recordOf(id: string, m: Manifest, created: string, source: string | null): RevisionRecord {
  return {
    id,
    created,
    files: m.entries.filter((e) => e.type === 'file').length,
    bytes: manifestBytes(m),
    source,
  };
}

/**
 * "STREAM" (its newest revision), "STREAM@ID" or "STREAM@PREFIX" (8+ hex
 * digits) to a record, given how to list a stream's revisions.
 */
export async function resolveRef(
  ref: string,
  revisions: (stream: string) => Promise<RevisionRecord[]>,
): Promise<{ stream: string; record: RevisionRecord }> {
  const at = ref.indexOf('@');
  const stream = at < 0 ? ref : ref.slice(0, at);
  const want = at < 0 ? null : ref.slice(at + 1).toLowerCase();
  const revs = await revisions(stream);
  const newest = revs[revs.length - 1];
  if (newest === undefined)
    throw new FerryError('FERRY_STORE_NOT_FOUND', `Cannot find stream ${stream}`);
  if (want === null) return { stream, record: newest };
  if (!/^[0-9a-f]{8,128}$/.test(want)) {
    throw new FerryError('FERRY_USAGE', `Cannot resolve ${ref}: a revision is 8 to 128 hex digits`);
  }
  const hits = revs.filter((r) => r.id.startsWith(want));
  const ids = new Set(hits.map((r) => r.id));
  if (ids.size === 0)
    throw new FerryError(
      'FERRY_STORE_NOT_FOUND',
      `Cannot find revision ${want} in stream ${stream}`,
    );
  if (ids.size > 1) {
    throw new FerryError(
      'FERRY_STORE_AMBIGUOUS',
      `Cannot resolve ${ref}: ${ids.size} revisions start with ${want}`,
    );
  }
  return { stream, record: hits[hits.length - 1]! };
}
