/**
 * What a placement has published, seen the same way for every cloud: find a
 * stream revision's image, list a stream's images (newest first), remove an
 * image and then the parts it needs (AWS: its snapshots; Glance: the kernel
 * and ramdisk images of an AMI/AKI/ARI triple). `ferry deregister`, `ferry
 * prune` and `ferry verify` work through it.
 */

import type { AwsClients } from './aws/clients.js';
import { deregisterImage, type FoundImage, findImage, streamImages } from './aws/register.js';
import { TAG } from './types.js';

export interface CatalogImage {
  readonly imageId: string;
  readonly name: string;
  /** Removed after the image, in this order. */
  readonly partIds: readonly string[];
  /** ferry's revision tag or property. */
  readonly revision: string | null;
  /** ISO time, when the cloud says. */
  readonly created: string | null;
}

export interface ImageCatalog {
  find(stream: string, revision: string, signal?: AbortSignal): Promise<CatalogImage | undefined>;
  /** The stream's images, newest first. */
  list(stream: string, signal?: AbortSignal): Promise<CatalogImage[]>;
  /** Removes the image, then its parts; an image already gone is not an error. */
  remove(
    imageId: string,
    partIds: readonly string[],
    signal?: AbortSignal,
  ): Promise<{ readonly removed: boolean; readonly removedParts: readonly string[] }>;
}

const fromAws = (i: FoundImage): CatalogImage => ({
  imageId: i.imageId,
  name: i.name,
  partIds: i.snapshotIds,
  revision: i.tags[TAG.revision] ?? null,
  created: i.creationDate ?? null,
});

/** An AWS placement's catalog, through its SDK clients. */
export function awsCatalog(clients: AwsClients): ImageCatalog {
  return {
    async find(stream, revision, signal) {
      const image = await findImage(clients, stream, revision, signal);
      return image === undefined ? undefined : fromAws(image);
    },
    async list(stream, signal) {
      return (await streamImages(clients, stream, signal)).map(fromAws);
    },
    async remove(imageId, partIds, signal) {
      const done = await deregisterImage(clients, imageId, {
        snapshotIds: partIds,
        ...(signal === undefined ? {} : { signal }),
      });
      return { removed: done.deregistered, removedParts: done.deletedSnapshots };
    },
  };
}
