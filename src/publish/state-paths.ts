/**
 * The publish state directory (ferry.yaml's `state`, default .ferry beside
 * it): journals, cached renders, block digests, the embedded local cloud's
 * data, and the lock that lets one publish at a time use them.
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { withLock } from '../store/store-lock.js';

export interface StatePaths {
  readonly root: string;
  /** One journal per run: RUN.jsonl. */
  readonly runs: string;
  /** Cached renders (raw) and their maps. */
  readonly renders: string;
  /** Block digests of published content, by content hash. */
  readonly digests: string;
  /** The embedded local cloud's data directory (`endpoint: local`). */
  readonly cloud: string;
  readonly lock: string;
}

export function statePaths(root: string): StatePaths {
  return {
    root,
    runs: join(root, 'runs'),
    renders: join(root, 'renders'),
    digests: join(root, 'digests'),
    cloud: join(root, 'cloud'),
    lock: join(root, 'lock'),
  };
}

/** Where the block digests of the content `contentHash` are kept. */
export function digestsFile(state: StatePaths, contentHash: string): string {
  return join(state.digests, `${contentHash}.json`);
}

/**
 * Runs `fn` holding the state directory's lock: one publish, deregister or
 * prune at a time per state directory (FERRY_PUBLISH_LOCKED when another
 * holds it; a lock left by a dead process on this host is taken over).
 */
export async function withStateLock<T>(
  state: StatePaths,
  fn: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  await mkdir(state.root, { recursive: true });
  try {
    return await withLock(state.lock, fn, {
      timeoutMs: 2000,
      ...(signal === undefined ? {} : { signal }),
    });
  } catch (error) {
    if (error instanceof FerryError && error.code === 'FERRY_STORE_LOCKED')
      throw new FerryError(
        'FERRY_PUBLISH_LOCKED',
        `Cannot change what is published: another ferry command holds ${state.lock}`,
        {
          cause: error,
          hint: 'Wait for it (ferry status shows a publish), or remove the lock file if its process is gone',
        },
      );
    throw error;
  }
}
