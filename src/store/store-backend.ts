import type { RevisionRecord } from './local-store.js';

/**
 * What replication needs of a store, local or remote: the refs, manifests
 * and objects, with every object verified by whoever receives it. LocalStore
 * (through `localBackend`) and RemoteStore (HTTP) both provide it.
 */
export interface StoreBackend {
  /** For messages: a directory or URL. */
  readonly name: string;
  streams(signal?: AbortSignal): Promise<string[]>;
  /** Oldest first; [] when the stream does not exist. */
  revisions(stream: string, signal?: AbortSignal): Promise<RevisionRecord[]>;
  /** Of `ids`, those the store does not hold. */
  missing(ids: readonly string[], signal?: AbortSignal): Promise<string[]>;
  /** An object's bytes, streamed (the reader verifies them against `id`). */
  readObject(id: string, signal?: AbortSignal): AsyncIterable<Buffer>;
  /** Stores an object; the store refuses bytes that do not hash to `id`. */
  putObject(
    id: string,
    size: number,
    data: AsyncIterable<Buffer>,
    signal?: AbortSignal,
  ): Promise<void>;
  /** Appends a revision to a stream (idempotent when it is already the newest). */
  commit(stream: string, record: RevisionRecord, signal?: AbortSignal): Promise<void>;
}
