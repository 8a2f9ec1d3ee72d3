/**
 * ferry.yaml's targets as what a publish runs: each target's placements (one
 * per region) with credentials, encryption, shares and tags resolved, and
 * `endpoint: local` pointed at the embedded local cloud.
 */

import {
  type FerryConfig,
  kmsKeyFor,
  type OpenStackTargetConfig,
  type TargetConfig,
} from '../config/index.js';
import { FerryError } from '../errors/index.js';
import { credentialProvider } from './aws/credentials.js';
import type { ImageSession } from './openstack/image-session.js';
import { DEFAULT_REGION, targetSessions } from './openstack/open-session.js';
import type { PublishTarget } from './publish.js';
import type { AwsPlacement, GlancePlacement } from './types.js';

export interface ResolveTargetsOptions {
  /** The URL of the embedded local cloud, for targets with `endpoint: local`. */
  readonly localUrl?: string;
  /** Target names to keep (--targets); all of the stream's when absent. */
  readonly only?: readonly string[];
  /** The stream being published: targets whose `streams` leave it out are dropped. */
  readonly stream?: string;
  /** Blocks in flight per placement (default 16). */
  readonly concurrency?: number;
}

export const needsLocalCloud = (targets: readonly TargetConfig[]): boolean =>
  targets.some((t) => t.type === 'aws' && t.endpoint === 'local');

export function selectTargets(
  config: FerryConfig,
  options: Pick<ResolveTargetsOptions, 'only' | 'stream'>,
): TargetConfig[] {
  const only = options.only;
  if (only !== undefined) {
    const unknown = only.filter((n) => !config.targets.some((t) => t.name === n));
    if (unknown.length > 0)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot publish to ${unknown.join(', ')}: no such target in ferry.yaml`,
      );
  }
  return config.targets.filter(
    (t) =>
      (only === undefined || only.includes(t.name)) &&
      (options.stream === undefined ||
        t.streams.length === 0 ||
        t.streams.includes(options.stream)),
  );
}

export function resolveTargets(
  targets: readonly TargetConfig[],
  options: ResolveTargetsOptions,
): PublishTarget[] {
  return targets.map((t) => {
    if (t.type === 'openstack') return resolveOpenStackTarget(t, options);
    let endpoint: string | undefined;
    if (t.endpoint === 'local') {
      if (options.localUrl === undefined)
        throw new FerryError(
          'FERRY_INTERNAL',
          `Cannot resolve target ${t.name}: the local cloud is not running`,
        );
      endpoint = options.localUrl;
    } else endpoint = t.endpoint;
    // One provider per target: a role is assumed once and its session shared by every region.
    const credentials = credentialProvider(t.credentials, {
      region: t.regions[0] ?? 'us-east-1',
      ...(endpoint === undefined ? {} : { endpoint }),
    });
    const placements: AwsPlacement[] = t.regions.map((region) => {
      const kmsKeyId = kmsKeyFor(t.encryption, region);
      return {
        cloud: 'aws',
        target: t.name,
        region,
        key: `${t.name}/${region}`,
        ...(endpoint === undefined ? {} : { endpoint }),
        credentials,
        ...(kmsKeyId === undefined ? {} : { kmsKeyId }),
        encrypted: t.encryption.kind !== 'none',
        shareWith: t.shareWith,
        tags: t.tags,
      };
    });
    return {
      name: t.name,
      method: t.method,
      placements,
      concurrency: options.concurrency ?? t.concurrency ?? 16,
      ...(t.stallMinutes === undefined ? {} : { stallMs: t.stallMinutes * 60_000 }),
      ...(t.bucket === undefined ? {} : { bucket: t.bucket }),
      ...(t.retention === undefined ? {} : { retention: t.retention }),
    };
  });
}

/** Placements per region, the regions' sessions opened on first use and shared by the run. */
function resolveOpenStackTarget(
  t: OpenStackTargetConfig,
  options: ResolveTargetsOptions,
): PublishTarget {
  const regions = t.regions ?? [DEFAULT_REGION];
  const sessions = targetSessions(t.cloud);
  const placements: GlancePlacement[] = regions.map((region) => {
    let opened: Promise<ImageSession> | undefined;
    return {
      cloud: 'openstack',
      target: t.name,
      region,
      key: `${t.name}/${region}`,
      session: () => {
        opened ??= sessions(region);
        opened.catch(() => {
          opened = undefined;
        });
        return opened;
      },
      glance: t.glance,
    };
  });
  return {
    name: t.name,
    method: 'glance',
    placements,
    concurrency: options.concurrency ?? 4,
    ...(t.retention === undefined ? {} : { retention: t.retention }),
  };
}
