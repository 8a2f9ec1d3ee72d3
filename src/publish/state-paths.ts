/**
 * The publish state directory (ferry.yaml's `state`, default .ferry beside
 * it): journals, cached renders, block digests, the embedded local cloud's
 * data, and the lock that lets one publish at a time use them.
 */

import { join } from 'node:path';

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
