import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../errors/index.js';
import { isObjectId } from './object-store.js';
import type { S3Bucket } from './s3-bucket.js';

/**
 * How S3 GC and writers stay out of each other's way without locks or
 * conditional writes. Before a GC deletes objects it writes, under gc/:
 *
 *   <stamp>-<random>.json   the ids it may delete (kept for SWEEP_MEMORY_MS)
 *   <stamp>-<random>.live   a heartbeat, rewritten every SWEEP_LEASE_MS / 4
 *                           while it deletes, removed when it is done
 *
 * then lists the revision records again. A writer writes its record, then
 * lists gc/. Either the GC's second listing saw the record (and the GC keeps
 * what it names), or the record came later than the sweep files, and the
 * writer sees them: it waits until no heartbeat is fresh, and checks that
 * each of its objects a sweep named is still there. So a sweep never
 * removes an object from under a revision a writer goes on to publish.
 *
 * Assumed: a writer commits within SWEEP_MEMORY_MS of asking the bucket
 * which objects it holds, and one batch of deletes takes well under
 * SWEEP_LEASE_MS.
 */
export const SWEEP_MEMORY_MS = 24 * 3600 * 1000;
export const SWEEP_LEASE_MS = 120_000;
/** Ids one sweep names (about 6.5 MB of JSON); a larger sweep goes in rounds. */
export const SWEEP_ROUND = 50_000;
const MAX_SWEEP_FILE = 8 * 1024 * 1024;

function sweepDir(bucket: S3Bucket): string {
  return `${bucket.prefix}gc/`;
}

/** One round of a GC's deletes, announced to writers. */
export class Sweep {
  readonly #bucket: S3Bucket;
  readonly #live: string;
  #beaten = performance.now();
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;

  private constructor(bucket: S3Bucket, live: string) {
    this.#bucket = bucket;
    this.#live = live;
  }

  /** Writes the list of ids and the first heartbeat. */
  static async begin(
    bucket: S3Bucket,
    ids: readonly string[],
    signal?: AbortSignal,
  ): Promise<Sweep> {
    const stamp = new Date(bucket.serverNow()).toISOString().replace(/[:.]/g, '');
    const base = `${sweepDir(bucket)}${stamp}-${randomBytes(8).toString('hex')}`;
    const body = Buffer.from(`${JSON.stringify({ format: 'ferry-sweep', version: 1, ids })}\n`);
    await bucket.putSmall(`${base}.json`, body, signal);
    const sweep = new Sweep(bucket, `${base}.live`);
    await sweep.beat(signal);
    sweep.#timer = setInterval(() => {
      sweep.beat().catch(() => {});
    }, SWEEP_LEASE_MS / 4);
    sweep.#timer.unref();
    return sweep;
  }

  /** Rewrites the heartbeat (one write at a time). */
  async beat(signal?: AbortSignal): Promise<void> {
    if (this.#beating !== undefined) return this.#beating;
    const started = performance.now();
    this.#beating = this.#bucket
      .putSmall(this.#live, Buffer.from('{}\n'), signal)
      .then(() => {
        this.#beaten = started;
      })
      .finally(() => {
        this.#beating = undefined;
      });
    return this.#beating;
  }

  /**
   * True when the heartbeat may have gone stale for writers (this process
   * stalled): the GC must beat and list the records again before deleting more.
   */
  lapsed(): boolean {
    return performance.now() - this.#beaten > SWEEP_LEASE_MS / 2;
  }

  /** Stops the heartbeat; the list of ids stays for writers that started before. */
  async end(): Promise<void> {
    clearInterval(this.#timer);
    await this.#beating?.catch(() => {});
    await this.#bucket.deleteKey(this.#live);
  }
}

/**
 * For a writer that has just written a record: waits while any sweep's
 * heartbeat is fresh, then returns every id the sweeps of the last
 * SWEEP_MEMORY_MS named (empty when there were none, the usual case).
 */
export async function sweptIds(
  bucket: S3Bucket,
  signal?: AbortSignal,
  pollMs = 1000,
): Promise<Set<string>> {
  for (;;) {
    const lists: string[] = [];
    let active = false;
    for await (const k of bucket.list(sweepDir(bucket), signal)) {
      const age = bucket.serverNow() - k.modified;
      if (k.key.endsWith('.live') && age < SWEEP_LEASE_MS) active = true;
      if (k.key.endsWith('.json') && age < SWEEP_MEMORY_MS) lists.push(k.key);
    }
    if (active) {
      try {
        await sleep(pollMs, undefined, signal === undefined ? {} : { signal });
      } catch {
        throw new FerryError(
          'FERRY_ABORTED',
          'Cannot wait for a gc sweep to end: the operation was aborted',
        );
      }
      continue;
    }
    const ids = new Set<string>();
    for (const key of lists) {
      const body = await bucket.getSmall(key, MAX_SWEEP_FILE, signal);
      if (body === null) continue;
      let parsed: { ids?: unknown };
      try {
        parsed = JSON.parse(body.toString('utf8')) as { ids?: unknown };
      } catch {
        throw new FerryError(
          'FERRY_STORE_MANIFEST_INVALID',
          `Cannot read ${key}: a sweep record that is not JSON`,
        );
      }
      if (!Array.isArray(parsed.ids))
        throw new FerryError(
          'FERRY_STORE_MANIFEST_INVALID',
          `Cannot read ${key}: a sweep record without ids`,
        );
      for (const id of parsed.ids) if (typeof id === 'string' && isObjectId(id)) ids.add(id);
    }
    return ids;
  }
}

/** Removes sweep files no writer can still need: lists past SWEEP_MEMORY_MS, heartbeats past the lease. */
export async function pruneSweeps(bucket: S3Bucket, signal?: AbortSignal): Promise<void> {
  const old: string[] = [];
  for await (const k of bucket.list(sweepDir(bucket), signal)) {
    const age = bucket.serverNow() - k.modified;
    if (k.key.endsWith('.json') ? age > SWEEP_MEMORY_MS : age > SWEEP_LEASE_MS) old.push(k.key);
  }
  await bucket.deleteKeys(old, signal);
}
