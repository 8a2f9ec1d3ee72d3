import {
  LocalStore,
  localBackend,
  RemoteStore,
  S3Store,
  type StoreBackend,
} from '../store/index.js';

/** True for a store named by URL (an image server or an S3 bucket) rather than a directory. */
export function isStoreUrl(where: string): boolean {
  return /^(https?|s3):\/\//.test(where);
}

/**
 * The store at `where`: a directory, an image server URL (with `token`), or
 * s3://BUCKET[/PREFIX] (the AWS SDK's credential chain, and $FERRY_S3_ENDPOINT
 * for an S3-compatible server).
 */
export async function storeBackend(
  where: string,
  token: string | undefined,
): Promise<StoreBackend> {
  if (/^https?:\/\//.test(where))
    return new RemoteStore(where, token === undefined ? {} : { token });
  if (where.startsWith('s3://')) return s3Store(where);
  return localBackend(await LocalStore.open(where));
}

/** s3://BUCKET[/PREFIX] with the SDK's credential chain and $FERRY_S3_ENDPOINT. */
export function s3Store(where: string): S3Store {
  const ep = process.env.FERRY_S3_ENDPOINT;
  return new S3Store({ url: where, ...(ep === undefined ? {} : { endpoint: ep }) });
}
