/**
 * EC2's view of the EBS engine's snapshots: who may see and use one (its
 * owner, the accounts it is shared with, everyone when public), copies
 * across regions and accounts under AWS's encryption rules, deletion that
 * respects images using a snapshot, and the createVolumePermission
 * attribute.
 */
import type { Accounts } from '../accounts.js';
import { type EbsEngine, isEbsError, type SnapshotInfo } from '../ebs/index.js';
import { isRegion } from '../regions.js';
import {
  ec2Error,
  invalidValue,
  snapshotInUse,
  snapshotMalformed,
  snapshotNotFound,
  userMalformed,
} from './errors.js';
import { ACCOUNT_ID, isId } from './ids.js';
import type { KmsAccess } from './kms-access.js';
import {
  MAX_SHARED_USERS,
  type Share,
  type SnapshotShares,
  sharedWith,
} from './snapshot-shares.js';
import type { Caller, Tag, TaggableKind } from './tags.js';

/** A snapshot as one caller sees it. */
export interface VisibleSnapshot {
  readonly info: SnapshotInfo;
  readonly share: Share;
}

export interface CopySnapshotInput {
  readonly sourceRegion: string;
  readonly sourceSnapshotId: string;
  readonly description?: string;
  readonly encrypted?: boolean;
  readonly kmsKeyId?: string;
  readonly tags?: readonly Tag[];
}

export interface PermissionChange {
  readonly addUsers: readonly string[];
  readonly removeUsers: readonly string[];
  readonly addPublic: boolean;
  readonly removePublic: boolean;
}

/** Says which image uses a snapshot, if any. */
export type SnapshotUser = (owner: Caller, snapshotId: string) => Promise<string | undefined>;

export class Snapshots {
  readonly ebs: EbsEngine;
  private readonly shares: SnapshotShares;
  private readonly kms: KmsAccess;
  private readonly accounts: Accounts;
  private usedBy: SnapshotUser = async () => undefined;

  constructor(ebs: EbsEngine, shares: SnapshotShares, kms: KmsAccess, accounts: Accounts) {
    this.ebs = ebs;
    this.shares = shares;
    this.kms = kms;
    this.accounts = accounts;
  }

  /** Installs the check that refuses deleting a snapshot an image uses. */
  setUsedBy(usedBy: SnapshotUser): void {
    this.usedBy = usedBy;
    this.ebs.addInUseGuard((ctx, id) => usedBy(ctx, id));
  }

  static checkId(id: string): void {
    if (!isId(id, 'snap')) throw snapshotMalformed(id);
  }

  /** The caller's own snapshot, or InvalidSnapshot.NotFound. */
  async own(caller: Caller, id: string): Promise<SnapshotInfo> {
    Snapshots.checkId(id);
    const info = await this.ebs.getSnapshot(caller, id);
    if (info === undefined) throw snapshotNotFound(id);
    return info;
  }

  /** A snapshot the caller owns or that is shared with it, in the caller's region (or `region`). */
  async find(caller: Caller, id: string, region = caller.region): Promise<VisibleSnapshot> {
    Snapshots.checkId(id);
    const mine = await this.ebs.getSnapshot({ account: caller.account, region }, id);
    if (mine !== undefined)
      return { info: mine, share: await this.shares.get({ account: caller.account, region }, id) };
    for (const account of this.accounts.ids()) {
      if (account === caller.account) continue;
      const owner = { account, region };
      const share = await this.shares.get(owner, id);
      if (!sharedWith(share, caller.account)) continue;
      const info = await this.ebs.getSnapshot(owner, id);
      if (info !== undefined) return { info, share };
    }
    throw snapshotNotFound(id);
  }

  /** Every snapshot the caller may see in its region: its own, then shared and public ones. */
  async visible(caller: Caller): Promise<VisibleSnapshot[]> {
    const out: VisibleSnapshot[] = [];
    const ownShares = new Map(await this.shares.all(caller));
    for (const info of await this.ebs.listSnapshots(caller))
      out.push({ info, share: ownShares.get(info.snapshotId) ?? { users: [], public: false } });
    for (const account of this.accounts.ids()) {
      if (account === caller.account) continue;
      const owner = { account, region: caller.region };
      for (const [id, share] of await this.shares.all(owner)) {
        if (!sharedWith(share, caller.account)) continue;
        const info = await this.ebs.getSnapshot(owner, id);
        if (info !== undefined) out.push({ info, share });
      }
    }
    return out;
  }

  async delete(caller: Caller, id: string): Promise<void> {
    await this.own(caller, id);
    const user = await this.usedBy(caller, id);
    if (user !== undefined) throw snapshotInUse(id, user);
    try {
      await this.ebs.deleteSnapshot(caller, id);
    } catch (error) {
      // An image registered between the check and the delete: the engine's guard saw it.
      if (isEbsError(error, 'ConflictException'))
        throw snapshotInUse(id, (await this.usedBy(caller, id)) ?? 'an image');
      if (isEbsError(error, 'ResourceNotFoundException')) throw snapshotNotFound(id);
      throw error;
    }
    await this.shares.remove(caller, id);
  }

  /**
   * Copies a snapshot the caller may see in `sourceRegion` into the caller's
   * account and region. An encrypted source gives an encrypted copy;
   * Encrypted=true encrypts an unencrypted one; a KmsKeyId must name a key
   * of the destination region the caller may use, and the source's key
   * must be usable by the caller to read it.
   */
  async copy(caller: Caller, principal: string, input: CopySnapshotInput): Promise<SnapshotInfo> {
    if (!isRegion(input.sourceRegion))
      throw invalidValue(
        `Value (${input.sourceRegion.slice(0, 64)}) for parameter SourceRegion is invalid.`,
      );
    if (input.kmsKeyId !== undefined && input.encrypted !== true)
      throw ec2Error(
        'InvalidParameterDependency',
        'The parameter KmsKeyId requires the parameter Encrypted to be set.',
      );
    const source = await this.find(caller, input.sourceSnapshotId, input.sourceRegion);
    const src = source.info;
    if (src.status !== 'completed')
      throw ec2Error(
        'IncorrectState',
        `Snapshot '${src.snapshotId}' is ${src.status}; only completed snapshots can be copied.`,
      );
    if (src.encrypted && !(await this.kms.usable(caller, src.kmsKeyArn)))
      throw ec2Error(
        'InvalidParameterValue',
        `The account ${caller.account} may not use the KMS key ${src.kmsKeyArn} that encrypts snapshot '${src.snapshotId}'.`,
      );
    const key =
      input.kmsKeyId === undefined
        ? undefined
        : (await this.kms.resolve(caller, input.kmsKeyId, principal)).arn;
    return this.ebs.copySnapshot(
      { account: src.ownerId, region: input.sourceRegion },
      src.snapshotId,
      caller,
      {
        description: input.description ?? `[Copied ${src.snapshotId} from ${input.sourceRegion}]`,
        tags: input.tags ?? [],
        ...(input.encrypted === true ? { encrypted: true } : {}),
        ...(key === undefined ? {} : { kmsKeyArn: key }),
      },
    );
  }

  async permissions(caller: Caller, id: string): Promise<Share> {
    await this.own(caller, id);
    return this.shares.get(caller, id);
  }

  async modifyPermissions(caller: Caller, id: string, change: PermissionChange): Promise<void> {
    const info = await this.own(caller, id);
    for (const u of [...change.addUsers, ...change.removeUsers])
      if (!ACCOUNT_ID.test(u)) throw userMalformed(u);
    if (info.encrypted && change.addPublic)
      throw ec2Error('OperationNotPermitted', 'Encrypted snapshots cannot be made public.');
    if (
      info.encrypted &&
      change.addUsers.length > 0 &&
      (await this.kms.isAwsManaged(info.kmsKeyArn))
    )
      throw ec2Error(
        'OperationNotPermitted',
        'Encrypted snapshots with EBS default key cannot be shared',
      );
    await this.shares.update(caller, id, (share) => {
      const users = new Set(share.users);
      for (const u of change.addUsers) users.add(u);
      for (const u of change.removeUsers) users.delete(u);
      if (users.size > MAX_SHARED_USERS)
        throw invalidValue(`A snapshot can be shared with at most ${MAX_SHARED_USERS} accounts.`);
      return {
        users: [...users],
        public: change.addPublic ? true : change.removePublic ? false : share.public,
      };
    });
  }

  async resetPermissions(caller: Caller, id: string): Promise<void> {
    await this.own(caller, id);
    await this.shares.remove(caller, id);
  }

  /** The tag registry's view of snapshots. */
  taggable(): TaggableKind {
    return {
      resourceType: 'snapshot',
      prefix: 'snap-',
      notFound: snapshotNotFound,
      exists: async (caller, id) => (await this.ebs.getSnapshot(caller, id)) !== undefined,
      updateTags: async (caller, id, change) => {
        try {
          await this.ebs.updateTags(caller, id, change);
        } catch (error) {
          if (isEbsError(error, 'ResourceNotFoundException')) throw snapshotNotFound(id);
          throw error;
        }
      },
      list: async (caller) =>
        (await this.ebs.listSnapshots(caller)).map((s) => ({ id: s.snapshotId, tags: s.tags })),
    };
  }
}
