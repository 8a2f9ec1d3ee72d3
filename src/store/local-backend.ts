import { FerryError } from '../errors/index.js';
import type { LocalStore, RevisionRecord } from './local-store.js';
import type { StoreBackend } from './store-backend.js';

/** A LocalStore seen as a replication endpoint. */
export function localBackend(store: LocalStore): StoreBackend {
  return {
    name: store.root,
    streams: () => store.streams(),
    async revisions(stream: string): Promise<RevisionRecord[]> {
      try {
        return await store.revisions(stream);
      } catch (error) {
        if (error instanceof FerryError && error.code === 'FERRY_STORE_NOT_FOUND') return [];
        throw error;
      }
    },
    async missing(ids: readonly string[]): Promise<string[]> {
      const out: string[] = [];
      for (const id of ids) if (!(await store.objects.has(id))) out.push(id);
      return out;
    },
    readObject: (id, signal) => store.objects.read(id, signal),
    async putObject(id, size, data, signal): Promise<void> {
      await store.objects.put({ kind: 'stream', stream: data, size }, id, signal);
    },
    async commit(stream, record, signal): Promise<void> {
      await store.commitRecord(stream, record, signal);
    },
  };
}
