/**
 * Getting image data into a Glance image, verified, and never leaving a
 * half-uploaded image behind:
 *
 * - the data goes by PUT /file, by glance-direct (PUT /stage then POST
 *   /import), or by web-download (Glance fetches a URL); `auto` is PUT /file,
 *   or glance-direct when stores are named or the server refuses PUT /file;
 * - SHA-512 is computed while streaming (unless the caller gives it); once
 *   the image is active, its os_hash_value and size must equal the local
 *   ones, or the image is deleted and the upload fails with
 *   FERRY_GLANCE_HASH_MISMATCH;
 * - an interrupted send (connection lost, 5xx, a refused token) is followed
 *   by a look at the image: back to `queued`, it is sent again (up to
 *   `retries` times, with backoff); `active` (the answer was lost) is
 *   verified as above; anything else, or no retries left, and the image is
 *   deleted (FERRY_GLANCE_UPLOAD_FAILED). An abort deletes it too.
 *
 * copyToStores adds stores to an active image with copy-image.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { type ErrorCode, FerryError } from '../../errors/index.js';
import { backoffMs, type RetryPolicy } from '../retry.js';
import type { GlanceClient, ImportMethod } from './glance-client.js';
import { abortableSleep, GLANCE_RETRY_POLICY } from './glance-http.js';
import type { GlanceImage, GlanceStatus } from './glance-image.js';
import { failedStores, waitForImage } from './glance-wait.js';

export type UploadMethod =
  | 'put'
  | 'glance-direct'
  | 'auto'
  | { readonly method: 'web-download'; readonly uri: string };

export interface UploadProgress {
  /** Bytes sent in this attempt. */
  readonly sent: number;
  readonly total: number;
  /** 1 for the first send. */
  readonly attempt: number;
}

export interface UploadOptions {
  /** A new stream of the data from its start, for each attempt (not used by web-download). */
  readonly open?: () => Readable;
  /** Bytes of the data (as stored: a qcow2 file's size, not its virtual size). */
  readonly size: number;
  /**
   * SHA-512 of the data, hex. Optional for put and glance-direct (computed
   * while streaming; when given, a stream that hashes otherwise is a source
   * that changed); required for web-download.
   */
  readonly sha512?: string;
  /**
   * Hash the data while it is sent (default: only when sha512 is not given).
   * With sha512 given, Glance's os_hash_value check alone catches both a
   * changed source and damage on the way, and saves a SHA-512 pass of the
   * CPU; hashing too names a changed source as such before the import.
   */
  readonly hashWhileStreaming?: boolean;
  /** Default 'auto'. */
  readonly method?: UploadMethod;
  /** Stores to import into (glance-direct, web-download). */
  readonly stores?: readonly string[];
  readonly allStoresMustSucceed?: boolean;
  /** Sends after the first when one is interrupted and the image is queued again (default 2). */
  readonly retries?: number;
  /** Backoff between sends (default GLANCE_RETRY_POLICY's delays). */
  readonly backoff?: RetryPolicy;
  /** Waiting for `active` after the data is in (default 30 minutes). */
  readonly timeoutMs?: number;
  /** After an interruption, how long the image may stay saving/uploading before it is given up (default 15 s). */
  readonly settleMs?: number;
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: UploadProgress) => void;
  /** [0, 1) for backoff jitter. */
  readonly random?: () => number;
}

export interface UploadResult {
  readonly image: GlanceImage;
  readonly method: 'put' | 'glance-direct' | 'web-download';
  /** Sends made (0: the image already held this data). */
  readonly attempts: number;
  readonly sha512: string;
}

const SHA512_HEX = /^[0-9a-f]{128}$/;
/** While the image is in one of these, Glance is still doing something with it. */
const BUSY: ReadonlySet<GlanceStatus> = new Set(['saving', 'uploading', 'importing']);
/** Statuses of the PUT /file refusal that mean "not here, try the import". */
const PUT_REFUSED: ReadonlySet<number> = new Set([403, 404, 405, 415, 501]);
/** How long the clean-up delete may take after an abort. */
const CLEANUP_MS = 30_000;

function statusOf(error: unknown): number | undefined {
  if (!(error instanceof FerryError)) return undefined;
  const s = error.details.status;
  return typeof s === 'number' ? s : undefined;
}

/** A failure worth a look at the image and maybe another send. */
function isInterruption(error: unknown): boolean {
  if (!(error instanceof FerryError)) return true; // a raw socket error from the stream
  if (error.code === 'FERRY_GLANCE_UNAUTHORIZED') return true; // the next send has a fresh token
  if (error.code !== 'FERRY_GLANCE_REQUEST') return false;
  const status = statusOf(error);
  return status === undefined || status === 429 || status >= 500;
}

function checkOptions(options: UploadOptions, method: UploadMethod): void {
  const usage = (reason: string) =>
    new FerryError('FERRY_USAGE', `Cannot upload the image data: ${reason}`);
  if (!Number.isSafeInteger(options.size) || options.size < 0)
    throw usage(`size ${options.size} is not a whole number of bytes`);
  if (options.sha512 !== undefined && !SHA512_HEX.test(options.sha512))
    throw usage('sha512 is not 128 lower-case hex digits');
  const retries = options.retries ?? 2;
  if (!Number.isInteger(retries) || retries < 0 || retries > 20)
    throw usage(`retries ${retries} is not 0 to 20`);
  if (typeof method === 'object') {
    if (options.sha512 === undefined) throw usage('web-download needs the sha512 of the data');
  } else if (options.open === undefined) throw usage(`${method} needs open()`);
}

/** Why `image` does not hold the data, or null when it does. */
function mismatch(image: GlanceImage, size: number, sha512: string): string | null {
  if (image.os_hash_algo !== 'sha512')
    return `Glance hashes with ${image.os_hash_algo ?? 'nothing'}, not sha512`;
  if (image.os_hash_value !== sha512)
    return `os_hash_value ${image.os_hash_value ?? 'null'} is not the local sha512 ${sha512}`;
  if (image.size !== size) return `size ${image.size ?? 'null'} is not the local ${size}`;
  return null;
}

export async function uploadImageData(
  client: GlanceClient,
  imageId: string,
  options: UploadOptions,
): Promise<UploadResult> {
  const method = options.method ?? 'auto';
  checkOptions(options, method);
  const signal = options.signal;
  const retries = options.retries ?? 2;
  const policy = options.backoff ?? GLANCE_RETRY_POLICY;
  const random = options.random ?? Math.random;
  const action = `upload the data of image ${imageId}`;
  const hashLocally = options.hashWhileStreaming ?? options.sha512 === undefined;

  /** Deletes the image (even after an abort), then builds the error to throw. */
  const giveUp = async (
    code: ErrorCode,
    message: string,
    cause: unknown,
    extra: Record<string, string | number | boolean | null> = {},
  ): Promise<FerryError> => {
    let deleted = false;
    let deleteError: string | null = null;
    try {
      await client.deleteImage(imageId, { signal: AbortSignal.timeout(CLEANUP_MS) });
      deleted = true;
    } catch (e) {
      deleteError = e instanceof Error ? e.message : String(e);
    }
    return new FerryError(code, message, {
      details: { id: imageId, deleted, deleteError, ...extra },
      cause,
      ...(deleted
        ? {}
        : { hint: `Delete image ${imageId} by hand: ferry could not (${deleteError ?? '?'}).` }),
    });
  };

  const start = await client.getImage(imageId, { signal });
  if (start === null)
    throw new FerryError('FERRY_NOT_FOUND', `Cannot ${action}: the image does not exist`, {
      details: { id: imageId },
    });
  if (start.status === 'active') {
    // Uploading again is a 409; the same data already there is success.
    const why =
      options.sha512 === undefined
        ? 'no sha512 was given to compare'
        : mismatch(start, options.size, options.sha512);
    if (why === null && options.sha512 !== undefined)
      return {
        image: start,
        method:
          typeof method === 'object'
            ? 'web-download'
            : method === 'glance-direct'
              ? 'glance-direct'
              : 'put',
        attempts: 0,
        sha512: options.sha512,
      };
    throw new FerryError(
      'FERRY_GLANCE_CONFLICT',
      `Cannot ${action}: the image is already active (${why})`,
      {
        details: { id: imageId, status: start.status },
      },
    );
  }
  if (start.status !== 'queued')
    throw new FerryError(
      'FERRY_GLANCE_CONFLICT',
      `Cannot ${action}: the image is ${start.status}, not queued`,
      {
        details: { id: imageId, status: start.status },
      },
    );

  let how: 'put' | 'glance-direct' | 'web-download' =
    typeof method === 'object' ? 'web-download' : method === 'auto' ? 'put' : method;
  let offered: string[] | null = null;
  const offers = async (m: ImportMethod) => {
    offered ??= await client.importMethods({ signal });
    return offered.includes(m);
  };
  if (method === 'auto' && options.stores !== undefined) how = 'glance-direct';
  if (how !== 'put' && !(await offers(how)))
    throw new FerryError(
      'FERRY_GLANCE_UNSUPPORTED',
      `Cannot ${action}: the server does not offer ${how}`,
      {
        details: { id: imageId, method: how, offered: (offered ?? []).join(',') },
      },
    );
  if (options.stores !== undefined) {
    const known = new Set((await client.stores({ signal })).map((s) => s.id));
    const missing = options.stores.filter((s) => !known.has(s));
    if (missing.length > 0)
      throw new FerryError(
        'FERRY_GLANCE_UNSUPPORTED',
        `Cannot ${action}: no store ${missing.join(', ')}`,
        {
          details: { id: imageId, stores: missing.join(',') },
        },
      );
  }

  const importFailed = (image: GlanceImage) => {
    const failed = failedStores(image);
    return failed.length > 0 ? `the import failed for ${failed.join(', ')}` : null;
  };

  /** One send; resolves with the sha512 of what was sent. */
  const send = async (attempt: number): Promise<string> => {
    if (how === 'web-download') {
      const uri = (method as { uri: string }).uri;
      await client.importImage(
        imageId,
        {
          method: 'web-download',
          uri,
          ...(options.stores === undefined ? {} : { stores: options.stores }),
          ...(options.allStoresMustSucceed === undefined
            ? {}
            : { allStoresMustSucceed: options.allStoresMustSucceed }),
        },
        { signal },
      );
      return options.sha512 as string;
    }
    const hash = hashLocally ? createHash('sha512') : null;
    const body = (options.open as () => Readable)();
    const data = {
      body,
      size: options.size,
      signal,
      onChunk: (chunk: Buffer, sent: number) => {
        hash?.update(chunk);
        options.onProgress?.({ sent, total: options.size, attempt });
      },
    };
    try {
      if (how === 'put') await client.uploadData(imageId, data);
      else await client.stageData(imageId, data);
    } finally {
      body.destroy();
    }
    const local = hash === null ? (options.sha512 as string) : hash.digest('hex');
    if (options.sha512 !== undefined && local !== options.sha512)
      throw await giveUp(
        'FERRY_GLANCE_HASH_MISMATCH',
        `Cannot ${action}: the source changed: it hashed to ${local}, not the given ${options.sha512}`,
        undefined,
        { local, expected: options.sha512 },
      );
    if (how === 'glance-direct')
      await client.importImage(
        imageId,
        {
          method: 'glance-direct',
          ...(options.stores === undefined ? {} : { stores: options.stores }),
          ...(options.allStoresMustSucceed === undefined
            ? {}
            : { allStoresMustSucceed: options.allStoresMustSucceed }),
        },
        { signal },
      );
    return local;
  };

  const verify = async (
    image: GlanceImage,
    sha512: string,
    attempts: number,
  ): Promise<UploadResult> => {
    const why = mismatch(image, options.size, sha512);
    if (why !== null)
      throw await giveUp(
        image.os_hash_algo !== null && image.os_hash_algo !== 'sha512'
          ? 'FERRY_GLANCE_UNSUPPORTED'
          : 'FERRY_GLANCE_HASH_MISMATCH',
        `Cannot ${action}: ${why}`,
        undefined,
        { local: sha512, remote: image.os_hash_value, size: options.size, remoteSize: image.size },
      );
    return { image, method: how, attempts, sha512 };
  };

  /** After an interruption: the image once Glance has stopped working on it (or the settle time ran out). */
  const settle = async (): Promise<GlanceImage | null> => {
    const deadline = Date.now() + (options.settleMs ?? 15_000);
    // Glance notices a broken upload when it next reads from the socket.
    await abortableSleep(200, signal, action);
    for (let poll = 100; ; poll = Math.min(poll * 2, 1000)) {
      const image = await client.getImage(imageId, { signal });
      if (image === null || !BUSY.has(image.status) || Date.now() >= deadline) return image;
      await abortableSleep(poll, signal, action);
    }
  };

  let lastSha: string | null = null;
  for (let attempt = 1; ; attempt++) {
    try {
      try {
        lastSha = await send(attempt);
      } catch (error) {
        // auto: a cloud that refuses PUT /file may still take an import.
        const status = statusOf(error);
        if (
          method === 'auto' &&
          how === 'put' &&
          status !== undefined &&
          PUT_REFUSED.has(status) &&
          (await offers('glance-direct'))
        ) {
          how = 'glance-direct';
          attempt--;
          continue;
        }
        throw error;
      }
      const image = await waitForImage(client, imageId, {
        until: ['active'],
        failWhen: importFailed,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
        signal,
      });
      return await verify(image, lastSha, attempt);
    } catch (error) {
      if (
        error instanceof FerryError &&
        (error.details.deleted !== undefined || error.code === 'FERRY_USAGE')
      )
        throw error; // given up already
      if (signal?.aborted === true)
        throw await giveUp(
          'FERRY_ABORTED',
          `Cannot ${action}: the operation was aborted`,
          signal.reason,
        );
      // A 409 on a re-send: Glance was still busy with the broken send (it
      // notices a lost connection only when it next reads). Look again.
      const conflict = error instanceof FerryError && error.code === 'FERRY_GLANCE_CONFLICT';
      if (error instanceof FerryError && !isInterruption(error) && !conflict)
        throw await giveUp(error.code, error.message, error, {
          ...(statusOf(error) === undefined ? {} : { status: statusOf(error) ?? null }),
        });
      const image = await settle();
      const reference = lastSha ?? options.sha512 ?? null;
      // Active: the answer was lost, or a broken send's twin finished; verify.
      if (image?.status === 'active' && reference !== null)
        return await verify(image, reference, attempt);
      const why =
        image === null
          ? 'the image is gone'
          : image.status !== 'queued'
            ? `the image stayed ${image.status}`
            : attempt > retries
              ? `no retries left after ${attempt} sends`
              : null;
      if (why !== null) {
        const reason = error instanceof Error ? error.message : String(error);
        throw await giveUp(
          'FERRY_GLANCE_UPLOAD_FAILED',
          `Cannot ${action}: ${reason}; ${why}`,
          error,
          {
            attempts: attempt,
            status: image?.status ?? null,
          },
        );
      }
      await abortableSleep(
        backoffMs(policy, attempt - 1, 'connection', random),
        signal,
        action,
      ).catch(async (e: unknown) => {
        throw await giveUp('FERRY_ABORTED', `Cannot ${action}: the operation was aborted`, e);
      });
    }
  }
}

export interface CopyOptions {
  /** Fail when one store fails (default true); false: the result lists the failed ones. */
  readonly allStoresMustSucceed?: boolean;
  readonly timeoutMs?: number;
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
}

export interface CopyResult {
  readonly image: GlanceImage;
  /** Stores the data was copied to now. */
  readonly copied: readonly string[];
  /** Stores that had it already. */
  readonly present: readonly string[];
  /** Stores Glance could not copy to (only with allStoresMustSucceed false). */
  readonly failed: readonly string[];
}

/**
 * Copies an active image's data to more stores (copy-image; Glance's
 * default policy lets only admins do it). The image is never deleted here:
 * it is still good in the stores it had.
 */
export async function copyToStores(
  client: GlanceClient,
  imageId: string,
  stores: readonly string[],
  options: CopyOptions = {},
): Promise<CopyResult> {
  const action = `copy image ${imageId} to ${stores.join(', ')}`;
  const signal = options.signal;
  const mustAll = options.allStoresMustSucceed ?? true;
  if (stores.length === 0 || stores.length > 64 || stores.some((s) => s === '' || s.length > 255))
    throw new FerryError('FERRY_USAGE', `Cannot ${action}: name 1 to 64 stores`);
  const image = await client.getImage(imageId, { signal });
  if (image === null)
    throw new FerryError('FERRY_NOT_FOUND', `Cannot ${action}: the image does not exist`, {
      details: { id: imageId },
    });
  if (image.status !== 'active')
    throw new FerryError(
      'FERRY_GLANCE_CONFLICT',
      `Cannot ${action}: the image is ${image.status}, not active`,
      {
        details: { id: imageId, status: image.status },
      },
    );
  const present = stores.filter((s) => image.stores.includes(s));
  const wanted = stores.filter((s) => !image.stores.includes(s));
  if (wanted.length === 0) return { image, copied: [], present, failed: [] };
  if (!(await client.importMethods({ signal })).includes('copy-image'))
    throw new FerryError(
      'FERRY_GLANCE_UNSUPPORTED',
      `Cannot ${action}: the server does not offer copy-image`,
      {
        details: { id: imageId },
      },
    );
  const known = new Set((await client.stores({ signal })).map((s) => s.id));
  const unknown = wanted.filter((s) => !known.has(s));
  if (unknown.length > 0)
    throw new FerryError(
      'FERRY_GLANCE_UNSUPPORTED',
      `Cannot ${action}: no store ${unknown.join(', ')}`,
      {
        details: { id: imageId, stores: unknown.join(',') },
      },
    );
  await client.importImage(
    imageId,
    { method: 'copy-image', stores: wanted, allStoresMustSucceed: mustAll },
    { signal },
  );
  const failedOf = (i: GlanceImage) => failedStores(i).filter((s) => wanted.includes(s));
  const done = await waitForImage(client, imageId, {
    until: ['active'],
    ready: (i) => wanted.every((s) => i.stores.includes(s) || failedOf(i).includes(s)),
    failWhen: (i) => {
      const failed = failedOf(i);
      return mustAll && failed.length > 0 ? `the copy failed for ${failed.join(', ')}` : null;
    },
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    signal,
  });
  const failed = failedOf(done);
  return { image: done, copied: wanted.filter((s) => !failed.includes(s)), present, failed };
}
