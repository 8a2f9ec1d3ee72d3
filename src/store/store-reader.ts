import { FerryError } from '../errors/index.js';
import { type RevisionRecord, resolveRef } from './local-store.js';
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

  resolve(ref: string): Promise<{ stream: string; record: RevisionRecord }> {
    return resolveRef(ref, (stream) => this.revisions(stream));
  }

  getManifest(id: string, signal?: AbortSignal): Promise<Manifest> {
    return readManifest((i, sig) => this.#backend.readObject(i, sig), id, signal);
  }
}

/**
 * Reads revision `id`'s manifest through `read` (verified object bytes),
 * capped at the manifest size limit, and checks it is canonical: its hash is
 * its id.
 */
export async function readManifest(
  read: (id: string, signal?: AbortSignal) => AsyncIterable<Buffer>,
  id: string,
  signal?: AbortSignal,
): Promise<Manifest> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of read(id, signal)) {
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
