/**
 * The AMI registration VM Import asks for (`ImportDependencies.registerImage`
 * in src/cloud/import/), made with the images service: an hvm image whose
 * root device is the imported snapshot, idempotent by the task's id. The
 * shape is restated here, not imported, so the two modules stay apart;
 * TypeScript checks it where the endpoint joins them.
 */
import { invalidValue } from './errors.js';
import { ARCHITECTURES, type Architecture } from './image-record.js';
import type { Images } from './images.js';
import type { Caller } from './tags.js';

export interface ImportRegistration {
  readonly name: string;
  readonly description?: string;
  readonly architecture: string;
  readonly bootMode?: 'legacy-bios' | 'uefi';
  readonly rootDeviceName: string;
  readonly snapshotId: string;
  /** GiB. */
  readonly volumeSize: number;
  readonly clientToken: string;
}

export function importRegistrar(
  images: Images,
): (ctx: Caller, input: ImportRegistration) => Promise<{ readonly imageId: string }> {
  return async (ctx, input) => {
    if (!(ARCHITECTURES as readonly string[]).includes(input.architecture))
      throw invalidValue(
        `Value (${input.architecture.slice(0, 32)}) for parameter architecture is invalid.`,
      );
    const image = await images.registerImage(ctx, {
      name: input.name,
      ...(input.description === undefined ? {} : { description: input.description }),
      architecture: input.architecture as Architecture,
      virtualizationType: 'hvm',
      ...(input.bootMode === undefined ? {} : { bootMode: input.bootMode }),
      rootDeviceName: input.rootDeviceName,
      blockDeviceMappings: [
        {
          deviceName: input.rootDeviceName,
          ebs: {
            snapshotId: input.snapshotId,
            volumeSize: input.volumeSize,
            deleteOnTermination: true,
          },
        },
      ],
      clientToken: input.clientToken,
    });
    return { imageId: image.imageId };
  };
}
