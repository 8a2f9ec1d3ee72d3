import { createHash } from 'node:crypto';
import { isZero } from '../disk/zero.js';

/** The unit of an incremental EBS snapshot, in which differences are counted. */
export const DIFF_CHUNK = 512 * 1024;

/**
 * The SHA-256 (base64) of each DIFF_CHUNK of `window`, null for all-zero
 * chunks. A render's map keeps them: they say which chunks a later render
 * changed without the earlier image at hand, and they are the checksums
 * EBS direct's PutSnapshotBlock asks for.
 */
export function chunkDigests(window: Buffer): (string | null)[] {
  const out: (string | null)[] = [];
  for (let c = 0; c < window.length; c += DIFF_CHUNK) {
    const chunk = window.subarray(c, c + DIFF_CHUNK);
    out.push(isZero(chunk) ? null : createHash('sha256').update(chunk).digest('base64'));
  }
  return out;
}

/** How a render's map records its chunk digests. */
export interface ChunkDigestsJson {
  readonly size: number;
  /** Chunk index (decimal) -> base64 SHA-256, for every chunk holding data. */
  readonly sha256: Readonly<Record<string, string>>;
}

export function chunksToJson(chunks: ReadonlyMap<number, string>): ChunkDigestsJson {
  const sha256: Record<string, string> = {};
  for (const [i, d] of [...chunks].sort((a, b) => a[0] - b[0])) sha256[String(i)] = d;
  return { size: DIFF_CHUNK, sha256 };
}

const B64_SHA256 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Checks the chunk digests of a map read from disk (`bytes`: the image
 * size the map describes); undefined when the map has none.
 */
export function checkChunks(
  raw: unknown,
  bytes: number,
  bad: (reason: string) => Error,
): Map<number, string> | undefined {
  if (raw === undefined) return undefined;
  const c = raw as Partial<ChunkDigestsJson>;
  if (c === null || typeof c !== 'object' || c.size !== DIFF_CHUNK)
    throw bad(`its chunk digests are not for ${DIFF_CHUNK}-byte chunks`);
  if (c.sha256 === null || typeof c.sha256 !== 'object') throw bad('its chunk digests are missing');
  const total = Math.ceil(bytes / DIFF_CHUNK);
  const entries = Object.entries(c.sha256);
  if (entries.length > total) throw bad('it lists more chunk digests than the image has chunks');
  const out = new Map<number, string>();
  for (const [k, v] of entries) {
    const i = Number(k);
    if (!/^\d{1,15}$/.test(k) || i >= total) throw bad(`chunk ${k.slice(0, 20)} is out of range`);
    if (typeof v !== 'string' || !B64_SHA256.test(v))
      throw bad(`chunk ${k} has a malformed digest`);
    out.set(i, v);
  }
  return out;
}
