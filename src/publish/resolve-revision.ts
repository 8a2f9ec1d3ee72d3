/**
 * STREAM@REV for commands about published images: with a local store in
 * ferry.yaml, a unique prefix of the revision id (LocalStore.resolve);
 * without one, the full id as the images are tagged with it.
 */

import type { FerryConfig } from '../config/index.js';
import { FerryError } from '../errors/index.js';
import { LocalStore } from '../store/index.js';

export interface StreamRevision {
  readonly stream: string;
  readonly revision: string;
}

const FULL_ID = /^[0-9a-f]{64,128}$/;

export async function resolveRevision(
  config: FerryConfig,
  ref: string,
  action: string,
): Promise<StreamRevision> {
  const at = ref.indexOf('@');
  const stream = at < 0 ? ref : ref.slice(0, at);
  const rev = at < 0 ? '' : ref.slice(at + 1).toLowerCase();
  if (stream === '' || rev === '')
    throw new FerryError('FERRY_USAGE', `Cannot ${action} ${ref}: give STREAM@REV`);
  if (!config.streams.some((s) => s.name === stream))
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot ${action} ${ref}: ferry.yaml has no stream ${stream}`,
    );
  const local = config.store !== undefined && !/^(https?|s3):\/\//.test(config.store);
  if (local) {
    const store = await LocalStore.open(config.store);
    const { record } = await store.resolve(`${stream}@${rev}`);
    return { stream, revision: record.id };
  }
  if (!FULL_ID.test(rev))
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot ${action} ${ref}: without a local store in ferry.yaml, give the full revision id`,
    );
  return { stream, revision: rev };
}
