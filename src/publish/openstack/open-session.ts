/**
 * Opens the image session an OpenStack target's placement uses: an
 * explicit endpoint needs no auth; a clouds.yaml cloud authenticates with
 * Keystone and finds the image endpoint in its catalog.
 */

import type { OpenStackCloudSource } from '../../config/index.js';
import { FerryError } from '../../errors/index.js';
import { type ImageSession, unauthenticatedSession } from './image-session.js';

/** The region of a target that names none: the cloud's own (region_name) or its catalog's only one. */
export const DEFAULT_REGION = 'default';

export async function openGlanceSession(
  source: OpenStackCloudSource,
  options: {
    readonly region?: string;
    readonly interface: 'public' | 'internal' | 'admin';
    readonly signal?: AbortSignal;
  },
): Promise<ImageSession> {
  if (source.kind === 'endpoint') return unauthenticatedSession(source.url);
  throw new FerryError(
    'FERRY_INTERNAL',
    `Cannot open cloud ${source.cloud ?? '(OS_CLOUD)'} in ${options.region ?? 'its region'}: Keystone auth is not wired yet`,
  );
}
