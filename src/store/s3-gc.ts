import { FerryError } from '../errors/index.js';
import { workerPool } from '../util/ordered-pool.js';
import type { GcOptions, GcResult } from './local-store.js';
import { DELETE_BATCH, type S3Bucket } from './s3-bucket.js';
import { pruneSweeps, SWEEP_MEMORY_MS, SWEEP_ROUND, Sweep } from './s3-sweeps.js';

/** A key under streams/: a revision record, or a commit on its way (see S3Store.commit). */
export interface RecordKey {
  readonly key: string;
  readonly stream: string;
  readonly pending: boolean;
  readonly modified: number;
}

/** What GC needs of an S3 store besides its bucket. */
export interface S3GcTarget {
  readonly bucket: S3Bucket;
  /** Every record and pending commit, in key order. */
  recordKeys(signal?: AbortSignal): Promise<RecordKey[]>;
  /** The revision a record names; null for a malformed record; undefined when the key is gone. */
  recordId(key: string, signal?: AbortSignal): Promise<string | null | undefined>;
  pins(signal?: AbortSignal): Promise<string[]>;
  /** A revision's manifest id and every object its entries name (it fails when the manifest cannot be read). */
  references(revision: string, signal?: AbortSignal): Promise<string[]>;
}

interface Candidate {
  readonly key: string;
  readonly id: string;
  readonly size: number;
}

/** Re-listings allowed while keys vanish between a listing and their read. */
const MAX_RELISTS = 10;

function chunks<T>(items: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

/**
 * GC of an S3 store, with the local store's semantics: per stream the newest
 * `keep` revisions stay (in the order `revisions()` gives), and pinned ones;
 * the records of the others are deleted; then every object no remaining
 * revision, pin or pending commit names, and that is older than the grace
 * period, is deleted. The grace is measured by the server's clock (its Date
 * header against the keys' LastModified).
 *
 * The order makes every step safe to interrupt: records go before any
 * object, so a GC killed midway has at worst left orphans for the next run;
 * objects go only after the sweep is announced (s3-sweeps.ts) and the
 * records are listed again, so a revision committed meanwhile keeps what it
 * names; leftovers of killed writers (tmp/ uploads, open multipart uploads,
 * pending commits) go last, once older than the grace period.
 */
export async function collectS3Garbage(
  target: S3GcTarget,
  options: GcOptions = {},
): Promise<GcResult> {
  const { bucket } = target;
  const { signal } = options;
  const dryRun = options.dryRun === true;
  const keep = options.keep ?? Number.POSITIVE_INFINITY;
  const graceMs = (options.graceSeconds ?? 3600) * 1000;

  const listed = await target.recordKeys(signal);
  const cutoff = bucket.serverNow() - graceMs;
  const seen = new Set<string>();
  const liveRevisions = new Set<string>();
  const liveObjects = new Set<string>();
  const addRevision = async (id: string): Promise<void> => {
    if (liveRevisions.has(id)) return;
    liveRevisions.add(id);
    for (const o of await target.references(id, signal)) liveObjects.add(o);
  };
  const ids = new Map<string, string | null>();
  await workerPool(listed, 16, async (r) => {
    const id = await target.recordId(r.key, signal);
    // Gone since the listing: deleted by another GC, or a pending commit that became a record.
    if (id === undefined) return;
    ids.set(r.key, id);
  });
  for (const r of listed) seen.add(r.key);

  const pinned = new Set(await target.pins(signal));
  const removedRevisions: Array<{ stream: string; id: string }> = [];
  const doomedRecords: string[] = [];
  const stalePending: string[] = [];
  const byStream = new Map<string, RecordKey[]>();
  const protect: string[] = [...pinned];
  for (const r of listed) {
    const id = ids.get(r.key);
    if (id === undefined || id === null) continue;
    if (r.pending) {
      // A writer that died between its pending key and its record: after a day it protects nothing.
      if (bucket.serverNow() - r.modified > SWEEP_MEMORY_MS) stalePending.push(r.key);
      else protect.push(id);
      continue;
    }
    const list = byStream.get(r.stream) ?? [];
    list.push(r);
    byStream.set(r.stream, list);
  }
  for (const [stream, records] of byStream) {
    // Revisions in the order revisions() reports them: by key, each at its first record.
    const order = new Set<string>();
    for (const r of records) order.add(ids.get(r.key)!);
    const newestFirst = [...order].reverse();
    const kept = new Set(newestFirst.filter((id, i) => i < keep || pinned.has(id)));
    for (const id of newestFirst) if (!kept.has(id)) removedRevisions.push({ stream, id });
    for (const r of records) if (!kept.has(ids.get(r.key)!)) doomedRecords.push(r.key);
    protect.push(...kept);
  }
  await workerPool(protect, 8, addRevision);

  // Records beyond retention go first: killed after this, a GC has only left orphaned objects.
  if (!dryRun) await bucket.deleteKeys(doomedRecords, signal);

  let listedObjects = 0;
  const candidates: Candidate[] = [];
  for await (const k of bucket.list(`${bucket.prefix}objects/`, signal)) {
    const id = bucket.objectIdOf(k.key);
    if (id === null) continue;
    listedObjects++;
    if (!liveObjects.has(id) && k.modified <= cutoff)
      candidates.push({ key: k.key, id, size: k.size });
  }

  /** Reads records and pins that appeared since the mark phase and keeps what they name. */
  const recheck = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      let vanished = false;
      const fresh = (await target.recordKeys(signal)).filter((r) => !seen.has(r.key));
      const found: string[] = [];
      await workerPool(fresh, 16, async (r) => {
        const id = await target.recordId(r.key, signal);
        if (id === undefined) {
          // A pending commit that became its record after the listing: list again to find it.
          vanished = true;
          return;
        }
        seen.add(r.key);
        if (id !== null) found.push(id);
      });
      await workerPool([...found, ...(await target.pins(signal))], 8, addRevision);
      if (!vanished) return;
      if (attempt >= MAX_RELISTS)
        throw new FerryError(
          'FERRY_IO',
          `Cannot gc ${bucket.name}: its records kept changing while they were read; run gc again`,
        );
    }
  };

  let removedObjects = 0;
  let removedBytes = 0;
  if (dryRun) {
    removedObjects = candidates.length;
    for (const c of candidates) removedBytes += c.size;
  } else {
    for (const round of chunks(candidates, SWEEP_ROUND)) {
      const sweep = await Sweep.begin(
        bucket,
        round.map((c) => c.id),
        signal,
      );
      try {
        await recheck();
        for (const batch of chunks(round, DELETE_BATCH)) {
          if (sweep.lapsed()) {
            await sweep.beat(signal);
            await recheck();
          }
          const doomed = batch.filter((c) => !liveObjects.has(c.id));
          await bucket.deleteKeys(
            doomed.map((c) => c.key),
            signal,
          );
          removedObjects += doomed.length;
          for (const c of doomed) removedBytes += c.size;
        }
      } finally {
        // A heartbeat left behind after a failure goes stale within the lease.
        await sweep.end().catch(() => {});
      }
    }
  }

  // Leftovers of writers that were killed or gave up, once older than the grace period.
  const staleTmp: string[] = [];
  for await (const k of bucket.list(`${bucket.prefix}tmp/`, signal)) {
    if (k.modified > cutoff) continue;
    staleTmp.push(k.key);
    removedBytes += k.size;
  }
  if (!dryRun) await bucket.deleteKeys([...staleTmp, ...stalePending], signal);
  for await (const u of bucket.openUploads(signal)) {
    if (u.initiated > cutoff) continue;
    removedBytes += await bucket.uploadedBytes(u, signal);
    if (!dryRun) await bucket.abortUpload(u.key, u.uploadId, signal);
  }
  if (!dryRun) await pruneSweeps(bucket, signal);
  return {
    removedRevisions,
    removedObjects,
    removedBytes,
    keptObjects: listedObjects - removedObjects,
  };
}
