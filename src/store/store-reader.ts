import { FerryError } from '../errors/index.js';
import type { RevisionRecord } from './local-store.js';
import { MANIFEST_LIMITS, type Manifest, parseManifest } from './manifest.js';
import type { StoreBackend } from './store-backend.js';

/** Reads objects by id, verified (what export needs of a store). */
export interface ObjectReader {
  read(id: string, signal?: AbortSignal): AsyncIterable<Buffer>;
}

/** What the read-only commands need of a store: a LocalStore has all of it, and so does a BackendReader. */
export interface StoreReader {
  readonly objects: ObjectReader;
  streams(): Promise<string[]>;
  revisions(stream: string): Promise<RevisionRecord[]>;
  resolve(ref: string): Promise<{ stream: string; record: RevisionRecord }>;
  getManifest(id: string, signal?: AbortSignal): Promise<Manifest>;
}

/** A remote or S3 store, read through its StoreBackend: manifests parsed and re-hashed, objects verified. */
export class BackendReader implements StoreReader {
  readonly objects: ObjectReader;
  readonly #backend: StoreBackend;

  constructor(backend: StoreBackend) {
    this.#backend = backend;
    this.objects = { read: (id, signal) => backend.readObject(id, signal) };
  }

  streams(): Promise<string[]> {
    return this.#backend.streams();
  }

  async revisions(stream: string): Promise<RevisionRecord[]> {
    const r = await this.#backend.revisions(stream);
    if (r.length === 0)
      throw new FerryError(
        'FERRY_STORE_NOT_FOUND',
        `Cannot find stream ${stream} in ${this.#backend.name}`,
      );
    return r;
  }

  async resolve(ref: string): Promise<{ stream: string; record: RevisionRecord }> {
    const at = ref.indexOf('@');
    const stream = at < 0 ? ref : ref.slice(0, at);
    const want = at < 0 ? null : ref.slice(at + 1).toLowerCase();
    const revs = await this.revisions(stream);
    if (want === null) return { stream, record: revs[revs.length - 1]! };
    if (!/^[0-9a-f]{8,128}$/.test(want))
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot resolve ${ref}: a revision is 8 to 128 hex digits`,
      );
    const hits = [...new Set(revs.filter((r) => r.id.startsWith(want)).map((r) => r.id))];
    if (hits.length === 0)
      throw new FerryError(
        'FERRY_STORE_NOT_FOUND',
        `Cannot find revision ${want} in stream ${stream}`,
      );
    if (hits.length > 1)
      throw new FerryError(
        'FERRY_STORE_AMBIGUOUS',
        `Cannot resolve ${ref}: ${hits.length} revisions start with ${want}`,
      );
    return { stream, record: revs.findLast((r) => r.id === hits[0])! };
  }

  async getManifest(id: string, signal?: AbortSignal): Promise<Manifest> {
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of this.#backend.readObject(id, signal)) {
      n += c.length;
      if (n > MANIFEST_LIMITS.maxManifestBytes)
        throw new FerryError(
          'FERRY_STORE_MANIFEST_INVALID',
          'Cannot read a manifest over the size cap',
        );
      parts.push(c);
    }
    const parsed = parseManifest(Buffer.concat(parts));
    if (parsed.id !== id)
      throw new FerryError(
        'FERRY_STORE_MANIFEST_INVALID',
        `Cannot read revision ${id.slice(0, 16)}…: its manifest is not canonical`,
      );
    return parsed.manifest;
  }
}
