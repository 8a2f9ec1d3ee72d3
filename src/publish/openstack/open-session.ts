/**
 * The image sessions of an OpenStack target's regions: the cloud resolved
 * (clouds.yaml is read when the target is first used, not when ferry.yaml
 * is), one Keystone auth for the target whose token every region shares, and
 * per region the image endpoint of its catalog. An explicit endpoint
 * without auth needs none of that.
 */

import { resolveCloudSpec } from './clouds-yaml.js';
import { type ImageSession, type ImageTls, unauthenticatedSession } from './image-session.js';
import { cloudTls, type KeystoneAuth, openKeystoneAuth } from './keystone-auth.js';
import { imageBaseUrl } from './keystone-catalog.js';
import type { OpenStackCloudSpec } from './openstack-cloud.js';

/** The region of a target that names none: the cloud's own (region_name) or its catalog's only one. */
export const DEFAULT_REGION = 'default';

/** Opens sessions per region of one target; authentication happens once, on first use. */
export function targetSessions(
  spec: OpenStackCloudSpec,
): (region: string, signal?: AbortSignal) => Promise<ImageSession> {
  let opened: Promise<{ auth: KeystoneAuth } | { url: string; tls: ImageTls }> | undefined;
  const open = (signal?: AbortSignal) => {
    opened ??= (async () => {
      const cloud = await resolveCloudSpec(spec);
      if (cloud.authType === 'none') {
        const url = imageBaseUrl(cloud.imageEndpointOverride) ?? cloud.imageEndpointOverride;
        return { url, tls: await cloudTls(cloud) };
      }
      return { auth: await openKeystoneAuth(cloud, signal === undefined ? {} : { signal }) };
    })();
    // A failed open (Keystone down, a bad password) is tried again by the next caller.
    opened.catch(() => {
      opened = undefined;
    });
    return opened;
  };
  return async (region, signal) => {
    const o = await open(signal);
    if ('url' in o) return unauthenticatedSession(o.url, o.tls);
    return o.auth.imageSession(region === DEFAULT_REGION ? {} : { region });
  };
}
