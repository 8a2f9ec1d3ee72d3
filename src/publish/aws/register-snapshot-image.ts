/**
 * RegisterImage for a snapshot ImportSnapshot made: hvm, the architecture
 * given (RegisterImage's defaults, paravirtual and i386, are traps), ENA,
 * the root device on the snapshot. A small local call: the EBS direct
 * publisher's registration is not on this branch. RegisterImage has no
 * ClientToken, so the image is looked up by its (unique per account and
 * region) name first: a re-run after a lost answer finds it instead of
 * failing on the duplicate name.
 */
import {
  DescribeImagesCommand,
  type DescribeImagesCommandOutput,
  type EC2Client,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import { FerryError } from '../../errors/index.js';
import { awsFailure } from './aws-failure.js';

export interface SnapshotImageInput {
  readonly name: string;
  readonly description: string;
  readonly snapshotId: string;
  readonly architecture: 'x86_64' | 'arm64' | 'i386';
  readonly bootMode?: 'legacy-bios' | 'uefi';
  /** Default /dev/xvda. */
  readonly rootDeviceName?: '/dev/xvda' | '/dev/sda1';
}

/** The AMI id: an existing image of that name on this snapshot, or a new registration. */
export async function registerSnapshotImage(
  ec2: EC2Client,
  input: SnapshotImageInput,
  signal?: AbortSignal,
): Promise<string> {
  const opts = signal === undefined ? {} : { abortSignal: signal };
  const root = input.rootDeviceName ?? '/dev/xvda';
  let existing: DescribeImagesCommandOutput;
  try {
    existing = await ec2.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        Filters: [{ Name: 'name', Values: [input.name] }],
      }),
      opts,
    );
  } catch (error) {
    throw awsFailure('FERRY_IMPORT_REFUSED', `look up the image ${input.name}`, error, signal);
  }
  const found = existing.Images?.[0];
  if (found?.ImageId !== undefined) {
    const on = found.BlockDeviceMappings?.some((b) => b.Ebs?.SnapshotId === input.snapshotId);
    if (on === true) return found.ImageId;
    throw new FerryError(
      'FERRY_IMPORT_REFUSED',
      `Cannot register the image ${input.name}: ${found.ImageId} already has that name, on another snapshot`,
      { details: { imageId: found.ImageId, snapshotId: input.snapshotId } },
    );
  }
  try {
    const r = await ec2.send(
      new RegisterImageCommand({
        Name: input.name,
        Description: input.description,
        Architecture: input.architecture,
        VirtualizationType: 'hvm',
        EnaSupport: true,
        RootDeviceName: root,
        ...(input.bootMode === undefined ? {} : { BootMode: input.bootMode }),
        BlockDeviceMappings: [
          {
            DeviceName: root,
            Ebs: { SnapshotId: input.snapshotId, DeleteOnTermination: true, VolumeType: 'gp3' },
          },
        ],
      }),
      opts,
    );
    if (r.ImageId === undefined) throw new Error('the answer has no ImageId');
    return r.ImageId;
  } catch (error) {
    throw awsFailure('FERRY_IMPORT_REFUSED', `register the image ${input.name}`, error, signal);
  }
}
