/**
 * Waiting for a Glance image to reach a status, by polling GET
 * /v2/images/{id}: abortable, with a time limit, and failing early when the
 * image goes killed or deleted or an import reports failed stores.
 */
import { FerryError } from '../../errors/index.js';
import type { GlanceClient } from './glance-client.js';
import { abortableSleep } from './glance-http.js';
import type { GlanceImage, GlanceStatus } from './glance-image.js';

export interface WaitOptions {
  /** The statuses that end the wait. */
  readonly until: readonly GlanceStatus[];
  /** Default 30 minutes. */
  readonly timeoutMs?: number;
  /** The first poll interval (default 250 ms); it grows to maxPollMs. */
  readonly pollMs?: number;
  /** Default 2000 ms. */
  readonly maxPollMs?: number;
  /** With a status of `until`, also this must hold (default: always). */
  readonly ready?: (image: GlanceImage) => boolean;
  /** A reason to stop waiting, from the image as polled (null: go on). */
  readonly failWhen?: (image: GlanceImage) => string | null;
  readonly signal?: AbortSignal | undefined;
  readonly now?: () => number;
}

const FAILED: ReadonlySet<GlanceStatus> = new Set(['killed', 'deleted', 'pending_delete']);

/** Stores an import or copy could not reach, as Glance lists them on the image. */
export function failedStores(image: GlanceImage): string[] {
  const raw = image.properties.os_glance_failed_import ?? '';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export async function waitForImage(
  client: GlanceClient,
  id: string,
  options: WaitOptions,
): Promise<GlanceImage> {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const deadline = now() + timeoutMs;
  const action = `wait for image ${id} to be ${options.until.join(' or ')}`;
  let poll = options.pollMs ?? 250;
  const maxPoll = options.maxPollMs ?? 2000;
  for (;;) {
    const image = await client.getImage(id, { signal: options.signal });
    if (image === null)
      throw new FerryError('FERRY_GLANCE_IMAGE_FAILED', `Cannot ${action}: the image is gone`, {
        details: { id },
      });
    if (options.until.includes(image.status) && (options.ready?.(image) ?? true)) return image;
    if (FAILED.has(image.status))
      throw new FerryError(
        'FERRY_GLANCE_IMAGE_FAILED',
        `Cannot ${action}: it went ${image.status}`,
        {
          details: { id, status: image.status },
        },
      );
    const reason = options.failWhen?.(image) ?? null;
    if (reason !== null)
      throw new FerryError('FERRY_GLANCE_IMAGE_FAILED', `Cannot ${action}: ${reason}`, {
        details: { id, status: image.status },
      });
    const left = deadline - now();
    if (left <= 0)
      throw new FerryError(
        'FERRY_GLANCE_TIMEOUT',
        `Cannot ${action}: still ${image.status} after ${timeoutMs} ms`,
        { details: { id, status: image.status, timeoutMs } },
      );
    await abortableSleep(Math.min(poll, left), options.signal, action);
    poll = Math.min(maxPoll, poll * 2);
  }
}
