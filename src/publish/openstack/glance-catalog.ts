/**
 * What ferry has published in a Glance region, by its own properties: the
 * image of a stream revision (a re-run's find, `ferry deregister`), a
 * stream's images newest first (`ferry prune`), and removal in a safe order:
 * the image first, then the kernel and ramdisk it names.
 */

import type { CatalogImage, ImageCatalog } from '../image-catalog.js';
import type { GlancePlacement } from '../types.js';
import { GlanceClient } from './glance-client.js';
import type { GlanceImage } from './glance-image.js';
import { GLANCE_PROPERTY } from './glance-properties.js';

export interface PublishedGlanceImage extends CatalogImage {
  readonly status: GlanceImage['status'];
  /** ferry's content hash property. */
  readonly hash: string | null;
}

/** Kernel and ramdisk ids an image names, in removal order (ramdisk, then kernel). */
function partsOf(image: GlanceImage): string[] {
  const p = image.properties;
  return [p.ramdisk_id, p.kernel_id].filter((x): x is string => x !== undefined && x !== '');
}

function published(image: GlanceImage): PublishedGlanceImage {
  return {
    imageId: image.id,
    name: image.name ?? '',
    partIds: partsOf(image),
    revision: image.properties[GLANCE_PROPERTY.revision] ?? null,
    created: image.created_at,
    status: image.status,
    hash: image.properties[GLANCE_PROPERTY.contentHash] ?? null,
  };
}

const gone = new Set(['deleted', 'pending_delete', 'killed']);

async function rootImages(
  client: GlanceClient,
  filter: Record<string, string>,
  signal?: AbortSignal,
): Promise<PublishedGlanceImage[]> {
  const images = await client.listImages(
    { ...filter, [GLANCE_PROPERTY.role]: 'root' },
    { sortKey: 'created_at', sortDir: 'desc', ...(signal === undefined ? {} : { signal }) },
  );
  return images.filter((i) => !gone.has(i.status)).map(published);
}

/** The newest image ferry published of the revision, active first. */
export async function findPublished(
  client: GlanceClient,
  target: string,
  stream: string,
  revision: string,
  signal?: AbortSignal,
): Promise<PublishedGlanceImage | undefined> {
  const images = await rootImages(
    client,
    {
      [GLANCE_PROPERTY.target]: target,
      [GLANCE_PROPERTY.stream]: stream,
      [GLANCE_PROPERTY.revision]: revision,
    },
    signal,
  );
  return images.find((i) => i.status === 'active') ?? images[0];
}

/** A target's images in one Glance region. */
export function glanceCatalog(client: GlanceClient, target: string): ImageCatalog {
  return {
    async find(stream, revision, signal) {
      return findPublished(client, target, stream, revision, signal);
    },
    async list(stream, signal) {
      return rootImages(
        client,
        { [GLANCE_PROPERTY.target]: target, [GLANCE_PROPERTY.stream]: stream },
        signal,
      );
    },
    async remove(imageId, partIds, signal) {
      const o = signal === undefined ? {} : { signal };
      const removed = await client.deleteImage(imageId, o);
      const removedParts: string[] = [];
      for (const id of partIds) if (await client.deleteImage(id, o)) removedParts.push(id);
      return { removed, removedParts };
    },
  };
}

/** A placement's catalog whose session opens on first use; `close` drops its connections. */
export function placementCatalog(
  placement: GlancePlacement,
  headers?: Readonly<Record<string, string>>,
): { readonly catalog: ImageCatalog; close(): void } {
  let client: GlanceClient | undefined;
  let opened: Promise<ImageCatalog> | undefined;
  const get = () => {
    opened ??= placement.session().then((session) => {
      client = new GlanceClient({ session, ...(headers === undefined ? {} : { headers }) });
      return glanceCatalog(client, placement.target);
    });
    return opened;
  };
  return {
    catalog: {
      find: async (stream, revision, signal) => (await get()).find(stream, revision, signal),
      list: async (stream, signal) => (await get()).list(stream, signal),
      remove: async (imageId, partIds, signal) => (await get()).remove(imageId, partIds, signal),
    },
    close: () => client?.close(),
  };
}
