import type { BlockDigests } from '../block-digests.js';
import { ZERO_BLOCK_SHA256 } from '../digest-table.js';

export type Plan =
  | { readonly send: false }
  | { readonly send: true; readonly digest: string; readonly zeros: boolean };

/**
 * Which blocks a snapshot gets. Without a parent: data (zero data only when
 * encrypted: unwritten blocks of an encrypted snapshot do not read back as
 * zeros); holes never. With one: what differs from the parent, and zeros
 * where the parent held data and the image now has none. `digest` is the
 * block's content digest (ZERO_BLOCK_SHA256 for zeros), undefined for a hole.
 */
export function planBlock(
  index: number,
  digest: string | undefined,
  encrypted: boolean,
  parent: BlockDigests | undefined,
): Plan {
  const p = parent?.get(index);
  if (digest === undefined) {
    // A hole: the image does not care what it reads, unless the parent put data there.
    return p !== undefined && p !== ZERO_BLOCK_SHA256
      ? { send: true, digest: ZERO_BLOCK_SHA256, zeros: true }
      : { send: false };
  }
  if (digest === ZERO_BLOCK_SHA256) {
    if (p === ZERO_BLOCK_SHA256) return { send: false };
    if (p === undefined && !encrypted) return { send: false };
    return { send: true, digest, zeros: true };
  }
  return p === digest ? { send: false } : { send: true, digest, zeros: false };
}
