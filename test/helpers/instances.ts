/** Helpers for the instance tests: snapshots uploaded with EBS direct, an image double, waits. */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import {
  CompleteSnapshotCommand,
  EBSClient,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { DescribeInstancesCommand, EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { AwsError } from '../../src/cloud/aws-error.js';
import { BLOCK_SIZE } from '../../src/cloud/ebs/index.js';
import type { ImageForLaunch, ImageForLaunchFn } from '../../src/cloud/instances/index.js';
import { TEST_CREDENTIALS } from './cloud.js';

type Credentials = { accessKeyId: string; secretAccessKey: string };

export const ec2Client = (url: string, credentials: Credentials = TEST_CREDENTIALS) =>
  new EC2Client({ endpoint: url, region: 'us-east-1', credentials, maxAttempts: 1 });

/** Uploads blocks (index → 512 KiB) as a completed snapshot; resolves to its id. */
export async function uploadSnapshot(
  url: string,
  blocks: ReadonlyMap<number, Buffer>,
  volumeSize = 1,
  credentials: Credentials = TEST_CREDENTIALS,
): Promise<string> {
  const ebs = new EBSClient({ endpoint: url, region: 'us-east-1', credentials, maxAttempts: 1 });
  const { SnapshotId } = await ebs.send(new StartSnapshotCommand({ VolumeSize: volumeSize }));
  const order = [...blocks.keys()].sort((a, b) => a - b);
  const linear = createHash('sha256');
  for (const index of order) {
    const data = blocks.get(index)!;
    const digest = createHash('sha256').update(data).digest();
    linear.update(digest);
    await ebs.send(
      new PutSnapshotBlockCommand({
        SnapshotId,
        BlockIndex: index,
        BlockData: data,
        DataLength: data.length,
        Checksum: digest.toString('base64'),
        ChecksumAlgorithm: 'SHA256',
      }),
    );
  }
  await ebs.send(
    new CompleteSnapshotCommand({
      SnapshotId,
      ChangedBlocksCount: order.length,
      Checksum: linear.digest('base64'),
      ChecksumAlgorithm: 'SHA256',
      ChecksumAggregationMethod: 'LINEAR',
    }),
  );
  return SnapshotId!;
}

/** A raw disk file's blocks that are not all zeros, and its size in GiB (rounded up). */
export async function diskBlocks(
  path: string,
): Promise<{ blocks: Map<number, Buffer>; gib: number }> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const blocks = new Map<number, Buffer>();
    for (let i = 0; i * BLOCK_SIZE < size; i++) {
      const b = Buffer.alloc(BLOCK_SIZE);
      await fh.read(b, 0, BLOCK_SIZE, i * BLOCK_SIZE);
      if (b.some((x) => x !== 0)) blocks.set(i, b);
    }
    return { blocks, gib: Math.max(1, Math.ceil(size / 1024 ** 3)) };
  } finally {
    await fh.close();
  }
}

/**
 * The image registry's double: AMI ids the test registers, mapped to a root
 * snapshot, visible to the accounts given (the owner's by default).
 */
export class ImageDouble {
  private readonly images = new Map<string, { image: ImageForLaunch; users: string[] }>();
  calls = 0;

  add(
    imageId: string,
    snapshotId: string,
    options: {
      ownerId?: string;
      bootMode?: ImageForLaunch['bootMode'];
      architecture?: string;
      volumeSize?: number;
      users?: string[];
    } = {},
  ): void {
    const ownerId = options.ownerId ?? '000000000000';
    this.images.set(imageId, {
      image: {
        imageId,
        ownerId,
        architecture: options.architecture ?? 'x86_64',
        ...(options.bootMode === undefined ? {} : { bootMode: options.bootMode }),
        rootDeviceName: '/dev/xvda',
        blockDeviceMappings: [
          {
            deviceName: '/dev/xvda',
            snapshotId,
            ...(options.volumeSize === undefined ? {} : { volumeSize: options.volumeSize }),
          },
        ],
      },
      users: options.users ?? [ownerId],
    });
  }

  readonly imageForLaunch: ImageForLaunchFn = async (caller, imageId) => {
    this.calls++;
    const found = this.images.get(imageId);
    if (found === undefined || !found.users.includes(caller.account))
      throw new AwsError(
        400,
        'InvalidAMIID.NotFound',
        `The image id '[${imageId}]' does not exist`,
      );
    return found.image;
  };
}

export async function describeOne(ec2: EC2Client, id: string): Promise<Instance> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations![0]!.Instances![0]!;
}

/** Polls DescribeInstances until the instance is in `state` (rejects with the last seen). */
export async function waitForState(
  ec2: EC2Client,
  id: string,
  state: string,
  timeoutMs = 60_000,
): Promise<Instance> {
  const end = Date.now() + timeoutMs;
  let last: Instance | undefined;
  while (Date.now() < end) {
    last = await describeOne(ec2, id);
    if (last.State?.Name === state) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${id} did not reach ${state} in ${timeoutMs} ms: ${last?.State?.Name} ${JSON.stringify(last?.StateReason)}`,
  );
}
