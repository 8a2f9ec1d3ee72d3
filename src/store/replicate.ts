import { FerryError } from '../errors/index.js';
import { workerPool } from '../util/ordered-pool.js';
import { MANIFEST_LIMITS, parseManifest } from './manifest.js';
import type { StoreBackend } from './store-backend.js';

export interface ReplicateOptions {
  /** Streams to copy (default: every stream of the source). */
  readonly streams?: readonly string[];
  /** Objects copied at once (default 4). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: {
    stream: string;
    revision: string;
    objects: number;
    bytes: number;
  }) => void;
}

export interface ReplicateResult {
  readonly revisions: number;
  readonly objects: number;
  readonly bytes: number;
  /** Objects the destination had already (skipped). */
  readonly present: number;
}

async function collect(it: AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of it) {
    n += c.length;
    if (n > max)
      throw new FerryError(
        'FERRY_STORE_MANIFEST_INVALID',
        'Cannot replicate: a manifest exceeds the size cap',
      );
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/**
 * Copies the revisions `to` lacks, stream by stream, oldest first: for each,
 * the manifest is read and checked, the destination is asked which of its
 * objects it lacks, only those are copied (verified by both ends), then the
 * manifest, then the revision record. Interrupted, it resumes where it
 * stopped: whatever the destination holds is never sent again, and a
 * revision is committed only once everything it names is there.
 */
export async function replicate(
  from: StoreBackend,
  to: StoreBackend,
  options: ReplicateOptions = {},
): Promise<ReplicateResult> {
  const { signal } = options;
  let revisions = 0;
  let objects = 0;
  let bytes = 0;
  let present = 0;
  const streams = options.streams ?? (await from.streams(signal));
  for (const stream of streams) {
    const src = await from.revisions(stream, signal);
    if (src.length === 0)
      throw new FerryError(
        'FERRY_STORE_NOT_FOUND',
        `Cannot replicate ${stream}: ${from.name} has no such stream`,
      );
    const existing = await to.revisions(stream, signal);
    const have = new Set(existing.map((r) => r.id));
    let last = existing.at(-1)?.id;
    for (const record of src) {
      if (have.has(record.id)) continue;
      const bytesOfManifest = await collect(
        from.readObject(record.id, signal),
        MANIFEST_LIMITS.maxManifestBytes,
      );
      const { manifest, id } = parseManifest(bytesOfManifest);
      if (id !== record.id) {
        throw new FerryError(
          'FERRY_STORE_MANIFEST_INVALID',
          `Cannot replicate ${stream}@${record.id.slice(0, 16)}: the manifest is not canonical`,
        );
      }
      const sizes = new Map<string, number>();
      for (const e of manifest.entries)
        if (e.type === 'file' && e.link === undefined) sizes.set(e.hash!, e.size);
      const ids = [...sizes.keys()];
      const missing = await to.missing(ids, signal);
      present += ids.length - missing.length;
      await workerPool(missing, options.concurrency ?? 4, async (oid) => {
        const size = sizes.get(oid)!;
        await to.putObject(oid, size, from.readObject(oid, signal), signal);
        objects++;
        bytes += size;
        options.onProgress?.({ stream, revision: record.id, objects, bytes });
      });
      if ((await to.missing([record.id], signal)).length > 0) {
        await to.putObject(
          record.id,
          bytesOfManifest.length,
          (async function* () {
            yield bytesOfManifest;
          })(),
          signal,
        );
        objects++;
        bytes += bytesOfManifest.length;
      }
      if (last !== record.id) {
        await to.commit(stream, record, signal);
        revisions++;
        last = record.id;
      }
      have.add(record.id);
    }
  }
  return { revisions, objects, bytes, present };
}
