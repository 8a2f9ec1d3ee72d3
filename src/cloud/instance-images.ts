/**
 * The instance runner's view of an AMI, from the image registry: the root
 * snapshot is read as its owner (the image's owner, or the account that
 * shared the snapshot), and EC2's `uefi-preferred` boot mode is the
 * runner's `uefi-preference`.
 */
import type { Images } from './ec2/index.js';
import type { ImageForLaunch } from './instances/index.js';

export async function launchable(
  images: Images,
  caller: { account: string; region: string },
  imageId: string,
): Promise<ImageForLaunch> {
  const image = await images.imageForLaunch(caller, imageId);
  const root = image.blockDeviceMappings.find((m) => m.deviceName === image.rootDeviceName);
  const bootMode = image.bootMode === 'uefi-preferred' ? 'uefi-preference' : image.bootMode;
  return {
    imageId: image.imageId,
    ownerId: root?.snapshotOwnerId ?? image.ownerId,
    architecture: image.architecture,
    ...(bootMode === undefined ? {} : { bootMode }),
    rootDeviceName: image.rootDeviceName,
    blockDeviceMappings: image.blockDeviceMappings.map((m) => ({
      deviceName: m.deviceName,
      ...(m.snapshotId === undefined ? {} : { snapshotId: m.snapshotId }),
      ...(m.volumeSize === undefined ? {} : { volumeSize: m.volumeSize }),
    })),
  };
}
