/**
 * The images (AMIs) of the local cloud: registered from EBS snapshots or
 * from an instance-store bundle manifest, shared by launch permission,
 * copied across regions and accounts (with their snapshots, through the
 * EBS engine), deregistered. One `ec2-images` document per account and
 * region holds its images and CopyImage's client tokens.
 *
 * Other components call `registerImage` (import tasks make AMIs) and
 * `imageForLaunch` (the instance runner).
 */
import { createHash } from 'node:crypto';
import type { Accounts } from '../accounts.js';
import type { AwsError } from '../aws-error.js';
import { isRegion } from '../regions.js';
import type { StateStore } from '../state-store.js';
import {
  amiMalformed,
  amiNotFound,
  amiUnavailable,
  ec2Error,
  invalidCombination,
  invalidValue,
  snapshotNotFound,
} from './errors.js';
import { ACCOUNT_ID, isId, newId } from './ids.js';
import {
  checkDescription,
  checkImageName,
  checkRegisterInput,
  type RegisterImageInput,
} from './image-input.js';
import { currentImage, type ImageBlockDevice, type ImageRecord } from './image-record.js';
import type { KmsAccess } from './kms-access.js';
import { type BundleManifest, parseManifest, splitImageLocation } from './manifest.js';
import type { Snapshots } from './snapshots.js';
import { type Caller, checkTag, mergeTags, type Tag, type TaggableKind } from './tags.js';

export type ManifestReader = (
  account: string,
  bucket: string,
  key: string,
) => Promise<Buffer | undefined>;

interface ImagesDoc {
  images: ImageRecord[];
  /**
   * Client tokens (CopyImage's, and registerImage's for import tasks) → the
   * image the request made and a digest of the request. Keys are
   * `tokenKey(kind, token)`: a caller's token never names an object key
   * such as __proto__, and the two actions' tokens never meet.
   */
  copyTokens: Record<string, { imageId: string; fingerprint: string }>;
}

const SERVICE = 'ec2-images';
const empty = (): ImagesDoc => ({ images: [], copyTokens: {} });
type TokenKind = 'copy' | 'register';
const tokenKey = (kind: TokenKind, token: string): string =>
  `${kind === 'copy' ? 't' : 'r'}:${token}`;

/** Images per account and region (bounds the document; AWS's AMI quota is larger). */
export const MAX_IMAGES = 1000;
/** Accounts an image may be shared with (AWS's limit). */
export const MAX_LAUNCH_USERS = 1000;

export interface CopyImageInput {
  readonly sourceRegion: string;
  readonly sourceImageId: string;
  readonly name: string;
  readonly description?: string;
  readonly encrypted?: boolean;
  readonly kmsKeyId?: string;
  readonly clientToken?: string;
  readonly copyImageTags?: boolean;
  readonly imageTags?: readonly Tag[];
  readonly snapshotTags?: readonly Tag[];
}

export interface LaunchPermissionChange {
  readonly addUsers: readonly string[];
  readonly removeUsers: readonly string[];
  readonly addPublic: boolean;
  readonly removePublic: boolean;
}

export interface DeregisterResult {
  readonly snapshotId: string;
  readonly returnCode: 'success' | 'skipped' | 'client-error';
}

export interface ImagesOptions {
  readonly state: StateStore;
  readonly snapshots: Snapshots;
  readonly kms: KmsAccess;
  readonly accounts: Accounts;
  readonly now?: () => number;
  /** How long a copy stays pending (ms). */
  readonly copyDelayMs?: number;
  readonly readManifest?: ManifestReader;
}

export class Images {
  private readonly state: StateStore;
  private readonly snapshots: Snapshots;
  private readonly kms: KmsAccess;
  private readonly accounts: Accounts;
  private readonly now: () => number;
  private readonly copyDelayMs: number;
  private readManifest: ManifestReader | undefined;

  constructor(options: ImagesOptions) {
    this.state = options.state;
    this.snapshots = options.snapshots;
    this.kms = options.kms;
    this.accounts = options.accounts;
    this.now = options.now ?? Date.now;
    this.copyDelayMs = options.copyDelayMs ?? 2000;
    this.readManifest = options.readManifest;
    this.snapshots.setUsedBy((owner, id) => this.snapshotUser(owner, id));
  }

  /** Lets RegisterImage read bundle manifests from S3 (the endpoint wires its S3 service here). */
  setManifestReader(reader: ManifestReader | undefined): void {
    this.readManifest = reader;
  }

  private async doc(c: Caller): Promise<Readonly<ImagesDoc>> {
    return this.state.read(c.account, c.region, SERVICE, empty);
  }

  /** The caller's own images, with their states as of now. */
  async own(caller: Caller): Promise<ImageRecord[]> {
    const now = this.now();
    return (await this.doc(caller)).images.map((r) => currentImage(r, now));
  }

  /** Every image the caller may see in its region: its own, then shared and public ones. */
  async visible(caller: Caller): Promise<ImageRecord[]> {
    const out = await this.own(caller);
    for (const account of this.accounts.ids()) {
      if (account === caller.account) continue;
      for (const r of await this.own({ account, region: caller.region }))
        if (r.public || r.launchUsers.includes(caller.account)) out.push(r);
    }
    return out;
  }

  /** An image the caller owns or may launch, in `region` (the caller's unless given). */
  async find(caller: Caller, imageId: string, region = caller.region): Promise<ImageRecord> {
    if (!isId(imageId, 'ami')) throw amiMalformed(imageId);
    for (const account of [caller.account, ...this.accounts.ids()]) {
      const r = (await this.own({ account, region })).find((i) => i.imageId === imageId);
      if (r === undefined) continue;
      if (account === caller.account || r.public || r.launchUsers.includes(caller.account))
        return r;
      break;
    }
    throw amiNotFound(imageId);
  }

  /** The caller's own image, or InvalidAMIID.NotFound (AuthFailure when only shared with it). */
  async owned(caller: Caller, imageId: string): Promise<ImageRecord> {
    const r = await this.find(caller, imageId);
    if (r.ownerId !== caller.account)
      throw ec2Error('AuthFailure', `Not authorized for image:${imageId}`);
    return r;
  }

  /**
   * The image a caller may launch: its own or one it has launch permission
   * for, available, its encrypted snapshots' keys usable by the caller.
   * Throws InvalidAMIID.Malformed, .NotFound or .Unavailable, or
   * InvalidKMSKey.InvalidState.
   */
  async imageForLaunch(caller: Caller, imageId: string): Promise<ImageRecord> {
    const r = await this.find(caller, imageId);
    if (r.state !== 'available') throw amiUnavailable(imageId, r.state);
    // AWS starts the instance and then stops it with the state reason
    // Client.InvalidKMSKey.InvalidState; the runner gets that code up front.
    for (const m of r.blockDeviceMappings) {
      if (m.encrypted === true && !(await this.kms.usable(caller, m.kmsKeyId ?? null)))
        throw ec2Error(
          'InvalidKMSKey.InvalidState',
          `The KMS key ${m.kmsKeyId} of ${m.snapshotId ?? m.deviceName} in image ${imageId} may not be used by account ${caller.account}.`,
        );
    }
    return r;
  }

  /** Which image (of any account in the region) uses a snapshot of `owner`, if any. */
  async snapshotUser(owner: Caller, snapshotId: string): Promise<string | undefined> {
    for (const account of new Set([owner.account, ...this.accounts.ids()])) {
      for (const r of (await this.doc({ account, region: owner.region })).images) {
        const uses = r.blockDeviceMappings.some(
          (m) => m.snapshotId === snapshotId && (m.snapshotOwnerId ?? r.ownerId) === owner.account,
        );
        if (uses) return r.imageId;
      }
    }
    return undefined;
  }

  // ---- RegisterImage --------------------------------------------------------

  async registerImage(ctx: Caller, input: RegisterImageInput): Promise<ImageRecord> {
    checkRegisterInput(input);
    for (const t of input.tags ?? []) checkTag(t);
    const { clientToken, ...request } = input;
    const fingerprint = createHash('sha256').update(JSON.stringify(request)).digest('hex');
    if (clientToken !== undefined) {
      const tokens = (await this.doc(ctx)).copyTokens;
      const key = tokenKey('register', clientToken);
      const prior = Object.hasOwn(tokens, key) ? tokens[key] : undefined;
      if (prior !== undefined) {
        if (prior.fingerprint !== fingerprint)
          throw ec2Error(
            'IdempotentParameterMismatch',
            `The client token ${clientToken} was used by another request with different parameters.`,
          );
        const again = (await this.own(ctx)).find((i) => i.imageId === prior.imageId);
        if (again !== undefined) return again;
      }
    }
    const now = this.now();
    let mappings: ImageBlockDevice[];
    let manifest: BundleManifest | undefined;
    let encrypted = false;
    if (input.imageLocation !== undefined) {
      manifest = await this.loadManifest(ctx, input.imageLocation);
      mappings = (input.blockDeviceMappings ?? []).map((m) => ({
        deviceName: m.deviceName,
        ...(m.virtualName === undefined ? {} : { virtualName: m.virtualName }),
        ...(m.noDevice === true ? { noDevice: true } : {}),
        ...(m.ebs?.volumeSize === undefined ? {} : { volumeSize: m.ebs.volumeSize }),
      }));
    } else {
      mappings = [];
      for (const m of input.blockDeviceMappings ?? []) {
        if (m.ebs === undefined) {
          mappings.push({
            deviceName: m.deviceName,
            ...(m.virtualName === undefined ? {} : { virtualName: m.virtualName }),
            ...(m.noDevice === true ? { noDevice: true } : {}),
          });
          continue;
        }
        const e = m.ebs;
        let device: ImageBlockDevice = {
          deviceName: m.deviceName,
          volumeType: e.volumeType ?? 'gp2',
          deleteOnTermination: e.deleteOnTermination ?? true,
          ...(e.iops === undefined ? {} : { iops: e.iops }),
          ...(e.throughput === undefined ? {} : { throughput: e.throughput }),
        };
        if (e.snapshotId !== undefined) {
          const { info } = await this.snapshots.find(ctx, e.snapshotId);
          if (info.status !== 'completed')
            throw ec2Error(
              'IncorrectState',
              `Snapshot '${info.snapshotId}' is ${info.status}; an image needs completed snapshots.`,
            );
          const size = e.volumeSize ?? info.volumeSize;
          if (size < info.volumeSize)
            throw ec2Error(
              'InvalidBlockDeviceMapping',
              `Volume of size ${size}GB is smaller than snapshot '${info.snapshotId}', expect size >= ${info.volumeSize}GB`,
            );
          if (e.encrypted !== undefined && e.encrypted !== info.encrypted)
            throw invalidCombination(
              `The mapping of ${m.deviceName} says Encrypted=${e.encrypted}, but snapshot '${info.snapshotId}' is ${info.encrypted ? '' : 'not '}encrypted: a volume takes its snapshot's encryption.`,
            );
          if (info.encrypted && !(await this.kms.usable(ctx, info.kmsKeyArn)))
            throw invalidValue(
              `The account ${ctx.account} may not use the KMS key ${info.kmsKeyArn} of snapshot '${info.snapshotId}'.`,
            );
          encrypted ||= info.encrypted;
          device = {
            ...device,
            snapshotId: info.snapshotId,
            snapshotOwnerId: info.ownerId,
            volumeSize: size,
            encrypted: info.encrypted,
            ...(info.kmsKeyArn === null ? {} : { kmsKeyId: info.kmsKeyArn }),
          };
        } else {
          // An empty volume: a key must be one the account may use, and needs Encrypted.
          if (e.kmsKeyId !== undefined && e.encrypted !== true)
            throw ec2Error(
              'InvalidParameterDependency',
              'The parameter KmsKeyId requires the parameter Encrypted to be set.',
            );
          const key =
            e.kmsKeyId === undefined
              ? undefined
              : (await this.kms.resolve(ctx, e.kmsKeyId, `arn:aws:iam::${ctx.account}:root`)).arn;
          device = {
            ...device,
            volumeSize: e.volumeSize!,
            encrypted: e.encrypted ?? false,
            ...(key === undefined ? {} : { kmsKeyId: key }),
          };
        }
        mappings.push(device);
      }
    }
    const record: ImageRecord = {
      imageId: newId('ami'),
      ownerId: ctx.account,
      region: ctx.region,
      name: input.name,
      ...(input.description === undefined ? {} : { description: input.description }),
      state: 'available',
      availableAt: now,
      creationTime: now,
      imageType: manifest?.imageType ?? 'machine',
      architecture: input.architecture ?? manifest?.architecture ?? 'i386',
      virtualizationType: input.virtualizationType ?? 'paravirtual',
      rootDeviceType: manifest === undefined ? 'ebs' : 'instance-store',
      rootDeviceName: input.rootDeviceName ?? '/dev/sda1',
      blockDeviceMappings: mappings,
      ...(input.bootMode === undefined ? {} : { bootMode: input.bootMode }),
      ...(input.enaSupport === undefined ? {} : { enaSupport: input.enaSupport }),
      ...(input.sriovNetSupport === undefined ? {} : { sriovNetSupport: 'simple' as const }),
      ...(input.imdsSupport === undefined ? {} : { imdsSupport: input.imdsSupport }),
      ...(input.tpmSupport === undefined ? {} : { tpmSupport: input.tpmSupport }),
      ...(input.uefiData === undefined ? {} : { uefiData: input.uefiData }),
      ...optional('kernelId', input.kernelId ?? manifest?.kernelId),
      ...optional('ramdiskId', input.ramdiskId ?? manifest?.ramdiskId),
      ...(input.imageLocation === undefined ? {} : { imageLocation: input.imageLocation }),
      ...(manifest === undefined ? {} : { manifest }),
      encrypted,
      tags: mergeTags([], input.tags ?? []),
      launchUsers: [],
      public: false,
    };
    const stored = await this.insert(
      ctx,
      record,
      clientToken === undefined ? undefined : { kind: 'register', token: clientToken, fingerprint },
    );
    if (stored.imageId !== record.imageId) return currentImage(stored, this.now());
    await this.verifySnapshots(ctx, record);
    return record;
  }

  /**
   * A DeleteSnapshot that ran between the snapshot checks and the insert
   * saw no image using the snapshot: look again now that the image is
   * stored (from here on the in-use guard sees it) and undo if one is gone.
   */
  private async verifySnapshots(ctx: Caller, record: ImageRecord): Promise<void> {
    for (const m of record.blockDeviceMappings) {
      if (m.snapshotId === undefined) continue;
      const owner = { account: m.snapshotOwnerId ?? record.ownerId, region: record.region };
      if ((await this.snapshots.ebs.getSnapshot(owner, m.snapshotId)) !== undefined) continue;
      await this.state.update(ctx.account, ctx.region, SERVICE, empty, (doc) => {
        doc.images = doc.images.filter((i) => i.imageId !== record.imageId);
      });
      throw snapshotNotFound(m.snapshotId);
    }
  }

  private async loadManifest(ctx: Caller, location: string): Promise<BundleManifest> {
    const { bucket, key } = splitImageLocation(location);
    if (this.readManifest === undefined)
      throw ec2Error(
        'InvalidManifest',
        `Cannot read the manifest ${location}: this endpoint has no S3 service to read it from.`,
      );
    const data = await this.readManifest(ctx.account, bucket, key);
    if (data === undefined)
      throw ec2Error(
        'InvalidManifest',
        `Cannot read the manifest ${location}: it does not exist or account ${ctx.account} may not read it.`,
      );
    return parseManifest(data);
  }

  /**
   * Adds a record, refusing a name the account already uses in the region.
   * With a client token that an earlier request already used (a retry that
   * raced this one), nothing is added and the earlier image is returned.
   */
  private insert(
    ctx: Caller,
    record: ImageRecord,
    token?: { kind: TokenKind; token: string; fingerprint: string },
  ): Promise<ImageRecord> {
    return this.state.update(ctx.account, ctx.region, SERVICE, empty, (doc) => {
      const key = token === undefined ? undefined : tokenKey(token.kind, token.token);
      if (token !== undefined && key !== undefined && Object.hasOwn(doc.copyTokens, key)) {
        const prior = doc.copyTokens[key]!;
        const image = doc.images.find((i) => i.imageId === prior.imageId);
        if (prior.fingerprint !== token.fingerprint)
          throw ec2Error(
            'IdempotentParameterMismatch',
            `The client token ${token.token} was used by another request with different parameters.`,
          );
        if (image !== undefined) return image;
      }
      const dup = doc.images.find((i) => i.name === record.name);
      if (dup !== undefined)
        throw ec2Error(
          'InvalidAMIName.Duplicate',
          `AMI name ${record.name} is already in use by AMI ${dup.imageId}`,
        );
      if (doc.images.length >= MAX_IMAGES)
        throw ec2Error(
          'ResourceLimitExceeded',
          `The account ${ctx.account} has ${MAX_IMAGES} images in ${ctx.region}, its limit.`,
        );
      doc.images.push(record);
      if (token !== undefined && key !== undefined)
        doc.copyTokens[key] = {
          imageId: record.imageId,
          fingerprint: token.fingerprint,
        };
      return record;
    });
  }

  // ---- DeregisterImage ------------------------------------------------------

  async deregister(
    caller: Caller,
    imageId: string,
    deleteSnapshots: boolean,
  ): Promise<DeregisterResult[]> {
    const image = await this.owned(caller, imageId);
    await this.state.update(caller.account, caller.region, SERVICE, empty, (doc) => {
      doc.images = doc.images.filter((i) => i.imageId !== imageId);
      for (const [t, v] of Object.entries(doc.copyTokens))
        if (v.imageId === imageId) delete doc.copyTokens[t];
    });
    if (!deleteSnapshots) return [];
    const results: DeregisterResult[] = [];
    for (const m of image.blockDeviceMappings) {
      if (m.snapshotId === undefined) continue;
      // Only the caller's own snapshots that no other image uses are deleted.
      if ((m.snapshotOwnerId ?? image.ownerId) !== caller.account) {
        results.push({ snapshotId: m.snapshotId, returnCode: 'skipped' });
        continue;
      }
      if ((await this.snapshotUser(caller, m.snapshotId)) !== undefined) {
        results.push({ snapshotId: m.snapshotId, returnCode: 'skipped' });
        continue;
      }
      try {
        await this.snapshots.delete(caller, m.snapshotId);
        results.push({ snapshotId: m.snapshotId, returnCode: 'success' });
      } catch {
        results.push({ snapshotId: m.snapshotId, returnCode: 'client-error' });
      }
    }
    return results;
  }

  // ---- CopyImage ------------------------------------------------------------

  /**
   * Copies an image the caller may launch from `sourceRegion` into the
   * caller's account and region, copying its snapshots with the EBS engine.
   * Another account's image also needs its snapshots shared with the
   * caller and their keys usable by it. The copy is pending for a moment.
   */
  async copy(caller: Caller, principal: string, input: CopyImageInput): Promise<ImageRecord> {
    if (!isRegion(input.sourceRegion))
      throw invalidValue(
        `Value (${input.sourceRegion.slice(0, 64)}) for parameter SourceRegion is invalid.`,
      );
    checkImageName(input.name);
    checkDescription(input.description);
    if (input.kmsKeyId !== undefined && input.encrypted !== true)
      throw ec2Error(
        'InvalidParameterDependency',
        'The parameter KmsKeyId requires the parameter Encrypted to be set.',
      );
    const fingerprint = createHash('sha256')
      .update(
        JSON.stringify([
          input.sourceRegion,
          input.sourceImageId,
          input.name,
          input.description ?? null,
          input.encrypted ?? null,
          input.kmsKeyId ?? null,
        ]),
      )
      .digest('hex');
    if (input.clientToken !== undefined) {
      const tokens = (await this.doc(caller)).copyTokens;
      const key = tokenKey('copy', input.clientToken);
      const prior = Object.hasOwn(tokens, key) ? tokens[key] : undefined;
      if (prior !== undefined) {
        if (prior.fingerprint !== fingerprint)
          throw ec2Error(
            'IdempotentParameterMismatch',
            `The client token ${input.clientToken} was used by another CopyImage request with different parameters.`,
          );
        const again = (await this.own(caller)).find((i) => i.imageId === prior.imageId);
        if (again !== undefined) return again;
      }
    }
    const source = await this.find(caller, input.sourceImageId, input.sourceRegion);
    if (source.rootDeviceType !== 'ebs')
      throw ec2Error('InvalidRequest', 'Only EBS-backed images can be copied here.');
    if (source.state !== 'available') throw amiUnavailable(source.imageId, source.state);
    const dup = (await this.doc(caller)).images.find((i) => i.name === input.name);
    if (dup !== undefined) {
      throw ec2Error(
        'InvalidAMIName.Duplicate',
        `AMI name ${input.name} is already in use by AMI ${dup.imageId}`,
      );
    }
    const key =
      input.kmsKeyId === undefined
        ? undefined
        : (await this.kms.resolve(caller, input.kmsKeyId, principal)).arn;
    // Check every snapshot before copying any.
    const from: Caller = { account: caller.account, region: input.sourceRegion };
    for (const m of source.blockDeviceMappings) {
      if (m.snapshotId === undefined) continue;
      let visible: Awaited<ReturnType<Snapshots['find']>>;
      try {
        visible = await this.snapshots.find(from, m.snapshotId, input.sourceRegion);
      } catch (error) {
        if ((error as AwsError).code === 'InvalidSnapshot.NotFound')
          throw ec2Error(
            'InvalidRequest',
            'You do not have permission to access the storage of this ami',
          );
        throw error;
      }
      if (visible.info.encrypted && !(await this.kms.usable(caller, visible.info.kmsKeyArn)))
        throw invalidValue(
          `The account ${caller.account} may not use the KMS key ${visible.info.kmsKeyArn} of snapshot '${m.snapshotId}'.`,
        );
    }
    const imageId = newId('ami');
    const copied: string[] = [];
    const mappings: ImageBlockDevice[] = [];
    let encrypted = false;
    try {
      for (const m of source.blockDeviceMappings) {
        if (m.snapshotId === undefined) {
          mappings.push(m);
          continue;
        }
        const snap = await this.snapshots.ebs.copySnapshot(
          { account: m.snapshotOwnerId ?? source.ownerId, region: input.sourceRegion },
          m.snapshotId,
          caller,
          {
            description: `Copied for DestinationAmi ${imageId} from SourceAmi ${source.imageId} for SourceSnapshot ${m.snapshotId}`,
            tags: input.snapshotTags ?? [],
            ...(input.encrypted === true ? { encrypted: true } : {}),
            ...(key === undefined ? {} : { kmsKeyArn: key }),
          },
        );
        copied.push(snap.snapshotId);
        encrypted ||= snap.encrypted;
        const { snapshotOwnerId: _owner, kmsKeyId: _key, ...rest } = m;
        mappings.push({
          ...rest,
          snapshotId: snap.snapshotId,
          snapshotOwnerId: caller.account,
          encrypted: snap.encrypted,
          ...(snap.kmsKeyArn === null ? {} : { kmsKeyId: snap.kmsKeyArn }),
        });
      }
      const now = this.now();
      const description = input.description ?? source.description;
      const {
        launchUsers: _u,
        public: _p,
        tags: _t,
        imageLocation: _l,
        manifest: _m,
        ...kept
      } = source;
      const sourceTags =
        input.copyImageTags === true && source.ownerId === caller.account ? source.tags : [];
      const record: ImageRecord = {
        ...kept,
        imageId,
        ownerId: caller.account,
        region: caller.region,
        name: input.name,
        ...(description === undefined ? {} : { description }),
        state: 'pending',
        availableAt: now + this.copyDelayMs,
        creationTime: now,
        blockDeviceMappings: mappings,
        encrypted,
        tags: mergeTags(sourceTags, input.imageTags ?? []),
        launchUsers: [],
        public: false,
        sourceImageId: source.imageId,
        sourceImageRegion: input.sourceRegion,
      };
      if (description === undefined) delete (record as { description?: string }).description;
      const stored = await this.insert(
        caller,
        record,
        input.clientToken === undefined
          ? undefined
          : { kind: 'copy', token: input.clientToken, fingerprint },
      );
      if (stored.imageId !== record.imageId) {
        for (const id of copied)
          await this.snapshots.ebs.deleteSnapshot(caller, id).catch(() => {});
        return currentImage(stored, this.now());
      }
      return record;
    } catch (error) {
      for (const id of copied) await this.snapshots.ebs.deleteSnapshot(caller, id).catch(() => {});
      throw error;
    }
  }

  // ---- Attributes -----------------------------------------------------------

  async modifyLaunchPermission(
    caller: Caller,
    imageId: string,
    change: LaunchPermissionChange,
  ): Promise<void> {
    const image = await this.owned(caller, imageId);
    for (const u of [...change.addUsers, ...change.removeUsers])
      if (!ACCOUNT_ID.test(u))
        throw ec2Error(
          'InvalidAMIAttributeItemValue',
          `Invalid attribute item value "${u.slice(0, 64)}" for userId item type.`,
        );
    if (image.encrypted && (change.addUsers.length > 0 || change.addPublic)) {
      for (const m of image.blockDeviceMappings) {
        if (m.encrypted !== true) continue;
        if (change.addPublic)
          throw ec2Error(
            'InvalidParameter',
            'Images with encrypted snapshots cannot be made public.',
          );
        if (await this.kms.isAwsManaged(m.kmsKeyId ?? null))
          throw ec2Error(
            'InvalidParameter',
            "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.",
          );
      }
    }
    await this.change(caller, imageId, (r) => {
      const users = new Set(r.launchUsers);
      for (const u of change.addUsers) users.add(u);
      for (const u of change.removeUsers) users.delete(u);
      if (users.size > MAX_LAUNCH_USERS)
        throw ec2Error(
          'ResourceLimitExceeded',
          `An image can be shared with at most ${MAX_LAUNCH_USERS} accounts.`,
        );
      return {
        ...r,
        launchUsers: [...users].sort(),
        public: change.addPublic ? true : change.removePublic ? false : r.public,
      };
    });
  }

  async setDescription(caller: Caller, imageId: string, description: string): Promise<void> {
    checkDescription(description);
    await this.owned(caller, imageId);
    await this.change(caller, imageId, (r) => ({ ...r, description }));
  }

  async setImdsSupport(caller: Caller, imageId: string, value: string): Promise<void> {
    if (value !== 'v2.0')
      throw invalidValue(
        `Value (${value.slice(0, 32)}) for parameter ImdsSupport is invalid. Expected: 'v2.0'.`,
      );
    await this.owned(caller, imageId);
    await this.change(caller, imageId, (r) => ({ ...r, imdsSupport: 'v2.0' }));
  }

  async resetLaunchPermission(caller: Caller, imageId: string): Promise<void> {
    await this.owned(caller, imageId);
    await this.change(caller, imageId, (r) => ({ ...r, launchUsers: [], public: false }));
  }

  private async change(
    caller: Caller,
    imageId: string,
    fn: (r: ImageRecord) => ImageRecord,
  ): Promise<void> {
    await this.state.update(caller.account, caller.region, SERVICE, empty, (doc) => {
      const i = doc.images.findIndex((r) => r.imageId === imageId);
      if (i < 0) throw amiNotFound(imageId);
      doc.images[i] = fn(doc.images[i]!);
    });
  }

  /** The tag registry's view of images. */
  taggable(): TaggableKind {
    return {
      resourceType: 'image',
      prefix: 'ami-',
      notFound: amiNotFound,
      exists: async (caller, id) => (await this.doc(caller)).images.some((i) => i.imageId === id),
      updateTags: (caller, id, fn) =>
        this.change(caller, id, (r) => ({ ...r, tags: [...fn(r.tags)] })),
      list: async (caller) =>
        (await this.doc(caller)).images.map((i) => ({ id: i.imageId, tags: i.tags })),
    };
  }
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
