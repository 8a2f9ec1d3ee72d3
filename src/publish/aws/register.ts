import {
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  type Image,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import { FerryError } from '../../errors/index.js';
import { TAG } from '../types.js';
import { awsCall, awsErrorCode } from './aws-call.js';
import type { AwsClients } from './clients.js';
import { deleteSnapshot } from './snapshots.js';

/** An image ferry registered, as DescribeImages tells it. */
export interface FoundImage {
  readonly imageId: string;
  readonly name: string;
  readonly state: string;
  readonly snapshotIds: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  readonly creationDate?: string;
}

export interface RegisterImageOptions {
  /** Unique per account and region (ferry uses STREAM-REVISION12, so a lost answer is found again). */
  readonly name: string;
  readonly snapshotId: string;
  /** Always explicit: RegisterImage's default is i386. */
  readonly architecture: 'x86_64' | 'arm64' | 'i386';
  readonly bootMode?: 'uefi' | 'legacy-bios' | 'uefi-preferred';
  readonly enaSupport: boolean;
  /** e.g. /dev/xvda or /dev/sda1: the root volume, made from the snapshot. */
  readonly rootDeviceName: string;
  readonly description: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

const opts = (signal?: AbortSignal) => ({
  send: signal === undefined ? {} : { abortSignal: signal },
  retry: signal === undefined ? {} : { signal },
});

function found(image: Image): FoundImage {
  const tags: Record<string, string> = {};
  for (const t of image.Tags ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? '';
  return {
    imageId: image.ImageId ?? '',
    name: image.Name ?? '',
    state: image.State ?? 'unknown',
    snapshotIds: (image.BlockDeviceMappings ?? [])
      .map((m) => m.Ebs?.SnapshotId)
      .filter((s): s is string => s !== undefined),
    tags,
    ...(image.CreationDate === undefined ? {} : { creationDate: image.CreationDate }),
  };
}

async function describeImages(
  clients: AwsClients,
  filters: { Name: string; Values: string[] }[],
  signal?: AbortSignal,
): Promise<FoundImage[]> {
  const o = opts(signal);
  const out: FoundImage[] = [];
  let token: string | undefined;
  do {
    const r = await awsCall(
      'describe images',
      () =>
        clients.ec2.send(
          new DescribeImagesCommand({
            Owners: ['self'],
            Filters: filters,
            MaxResults: 1000,
            ...(token === undefined ? {} : { NextToken: token }),
          }),
          o.send,
        ),
      o.retry,
    );
    for (const i of r.Images ?? []) out.push(found(i));
    token = r.NextToken;
  } while (token !== undefined && token !== '');
  return out;
}

/** The caller's image of `stream` at `revision` (by ferry's tags), if there is one. */
export async function findImage(
  clients: AwsClients,
  stream: string,
  revision: string,
  signal?: AbortSignal,
): Promise<FoundImage | undefined> {
  const images = await describeImages(
    clients,
    [
      { Name: `tag:${TAG.stream}`, Values: [stream] },
      { Name: `tag:${TAG.revision}`, Values: [revision] },
    ],
    signal,
  );
  // Newest first, should there be several (a retention sweep cleans them up).
  images.sort((a, b) => (b.creationDate ?? '').localeCompare(a.creationDate ?? ''));
  return images.find((i) => i.state !== 'deregistered');
}

/** Every one of the caller's images of `stream` (by ferry's tags), newest first, deregistered ones left out. */
export async function streamImages(
  clients: AwsClients,
  stream: string,
  signal?: AbortSignal,
): Promise<FoundImage[]> {
  const images = await describeImages(
    clients,
    [
      { Name: 'tag-key', Values: [TAG.stream] },
      { Name: `tag:${TAG.stream}`, Values: [stream] },
    ],
    signal,
  );
  return images
    .filter((i) => i.state !== 'deregistered')
    .sort((a, b) => (b.creationDate ?? '').localeCompare(a.creationDate ?? ''));
}

const toTags = (tags: Readonly<Record<string, string>>) =>
  Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

/**
 * Registers an hvm image whose root device is the snapshot, and returns its
 * id. Idempotent: when the name is taken by the caller's image of the same
 * snapshot (an earlier attempt whose answer was lost), that image is
 * returned; by any other image, FERRY_AMI_NAME_TAKEN.
 */
export async function registerImage(
  clients: AwsClients,
  options: RegisterImageOptions,
): Promise<string> {
  const o = opts(options.signal);
  try {
    const r = await awsCall(
      'register the image',
      () =>
        clients.ec2.send(
          new RegisterImageCommand({
            Name: options.name,
            Description: options.description,
            Architecture: options.architecture,
            VirtualizationType: 'hvm',
            RootDeviceName: options.rootDeviceName,
            EnaSupport: options.enaSupport,
            ...(options.bootMode === undefined ? {} : { BootMode: options.bootMode }),
            BlockDeviceMappings: [
              {
                DeviceName: options.rootDeviceName,
                Ebs: {
                  SnapshotId: options.snapshotId,
                  DeleteOnTermination: true,
                  VolumeType: 'gp3',
                },
              },
            ],
            ...(Object.keys(options.tags).length === 0
              ? {}
              : { TagSpecifications: [{ ResourceType: 'image', Tags: toTags(options.tags) }] }),
          }),
          o.send,
        ),
      o.retry,
    );
    if (r.ImageId === undefined) {
      throw new FerryError(
        'FERRY_AWS_REQUEST',
        'Cannot register the image: RegisterImage answered no image id',
        {
          details: { operation: 'RegisterImage', awsCode: 'none', status: null },
        },
      );
    }
    return r.ImageId;
  } catch (error) {
    if (awsErrorCode((error as { cause?: unknown }).cause) !== 'InvalidAMIName.Duplicate')
      throw error;
    const [taken] = await describeImages(
      clients,
      [{ Name: 'name', Values: [options.name] }],
      options.signal,
    );
    if (taken?.snapshotIds.includes(options.snapshotId)) return taken.imageId;
    throw new FerryError(
      'FERRY_AMI_NAME_TAKEN',
      `Cannot register image ${options.name}: the name is used by ${taken?.imageId ?? 'another image'}, made from another snapshot`,
      {
        details: {
          name: options.name,
          imageId: taken?.imageId ?? null,
          snapshotId: options.snapshotId,
        },
        hint: 'Deregister that image, or publish under another name',
        cause: error,
      },
    );
  }
}

/** Adds (or overwrites) tags on images and snapshots. */
export async function tagResources(
  clients: AwsClients,
  resourceIds: readonly string[],
  tags: Readonly<Record<string, string>>,
  signal?: AbortSignal,
): Promise<void> {
  if (resourceIds.length === 0 || Object.keys(tags).length === 0) return;
  const o = opts(signal);
  await awsCall(
    'tag resources',
    () =>
      clients.ec2.send(
        new CreateTagsCommand({ Resources: [...resourceIds], Tags: toTags(tags) }),
        o.send,
      ),
    o.retry,
  );
}

/**
 * Gives `accounts` launch permission on the image and create-volume
 * permission on its snapshots (without the latter they cannot launch it).
 */
export async function shareImage(
  clients: AwsClients,
  imageId: string,
  snapshotIds: readonly string[],
  accounts: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  if (accounts.length === 0) return;
  const o = opts(signal);
  const add = accounts.map((UserId) => ({ UserId }));
  for (const snapshotId of snapshotIds) {
    await awsCall(
      'share the snapshot',
      () =>
        clients.ec2.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: snapshotId,
            Attribute: 'createVolumePermission',
            CreateVolumePermission: { Add: add },
          }),
          o.send,
        ),
      o.retry,
    );
  }
  await awsCall(
    'share the image',
    () =>
      clients.ec2.send(
        new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: add } }),
        o.send,
      ),
    o.retry,
  );
}

/**
 * Deregisters the image, then deletes its snapshots: in that order, because
 * a snapshot an image uses cannot be deleted (InvalidSnapshot.InUse).
 * An image already gone is not an error; its snapshots, when given, still go.
 */
export async function deregisterImage(
  clients: AwsClients,
  imageId: string,
  options: { readonly snapshotIds?: readonly string[]; readonly signal?: AbortSignal } = {},
): Promise<{ readonly deregistered: boolean; readonly deletedSnapshots: readonly string[] }> {
  const { signal } = options;
  const o = opts(signal);
  let snapshots = options.snapshotIds;
  if (snapshots === undefined) {
    const r = await awsCall(
      'describe the image',
      () => clients.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), o.send),
      o.retry,
    ).catch((error: unknown) => {
      if (awsErrorCode((error as { cause?: unknown }).cause) === 'InvalidAMIID.NotFound')
        return undefined;
      throw error;
    });
    const image = r?.Images?.[0];
    snapshots = image === undefined ? [] : found(image).snapshotIds;
  }
  let deregistered = true;
  try {
    await awsCall(
      'deregister the image',
      () => clients.ec2.send(new DeregisterImageCommand({ ImageId: imageId }), o.send),
      o.retry,
    );
  } catch (error) {
    if (awsErrorCode((error as { cause?: unknown }).cause) !== 'InvalidAMIID.NotFound') throw error;
    deregistered = false;
  }
  const deleted: string[] = [];
  for (const s of snapshots) if (await deleteSnapshot(clients, s, signal)) deleted.push(s);
  return { deregistered, deletedSnapshots: deleted };
}
