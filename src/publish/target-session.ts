/**
 * ferry.yaml's targets opened for a command that looks at what was
 * published (verify, deregister, prune): the targets chosen (--targets, the
 * stream's), resolved, with the embedded local cloud started when one of
 * them has `endpoint: local`, and SDK clients per placement made on demand.
 */

import type { FerryConfig } from '../config/index.js';
import { type AwsClients, awsClients } from './aws/clients.js';
import { awsCatalog, type ImageCatalog } from './image-catalog.js';
import { startLocalCloud } from './local-cloud.js';
import { placementCatalog } from './openstack/glance-catalog.js';
import type { PublishTarget } from './publish.js';
import { statePaths } from './state-paths.js';
import { needsLocalCloud, resolveTargets, selectTargets } from './targets.js';
import type { Placement } from './types.js';

export interface TargetSession {
  readonly targets: readonly PublishTarget[];
  /** Clients for one placement, made once and closed with the session. */
  clients(placement: Placement): AwsClients;
  /** What the placement has published, whatever its cloud. */
  catalog(placement: Placement): ImageCatalog;
  close(): Promise<void>;
}

export async function openTargets(
  config: FerryConfig,
  options: { readonly stream?: string; readonly only?: readonly string[] } = {},
): Promise<TargetSession> {
  const chosen = selectTargets(config, {
    ...(options.only === undefined ? {} : { only: options.only }),
    ...(options.stream === undefined ? {} : { stream: options.stream }),
  });
  const local = needsLocalCloud(chosen)
    ? await startLocalCloud(statePaths(config.state).cloud)
    : undefined;
  const made = new Map<string, AwsClients>();
  const glance = new Map<string, ReturnType<typeof placementCatalog>>();
  try {
    const targets = resolveTargets(chosen, { localUrl: local?.url ?? 'http://127.0.0.1:0' });
    const clients = (placement: Placement): AwsClients => {
      let c = made.get(placement.key);
      if (c === undefined) {
        c = awsClients(placement, { concurrency: 8 });
        made.set(placement.key, c);
      }
      return c;
    };
    return {
      targets,
      clients,
      catalog(placement) {
        if (placement.cloud === 'aws') return awsCatalog(clients(placement));
        let g = glance.get(placement.key);
        if (g === undefined) {
          g = placementCatalog(placement);
          glance.set(placement.key, g);
        }
        return g.catalog;
      },
      async close() {
        for (const c of made.values()) c.destroy();
        made.clear();
        for (const g of glance.values()) g.close();
        glance.clear();
        await local?.close();
      },
    };
  } catch (error) {
    await local?.close();
    throw error;
  }
}
