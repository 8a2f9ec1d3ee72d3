/**
 * The EC2 side of the local cloud, assembled: snapshots (over the EBS
 * engine), images, the tag registry, and the action table the EC2 query
 * service serves.
 */
import type { Accounts } from '../accounts.js';
import type { EbsEngine } from '../ebs/index.js';
import type { Ec2Actions } from '../ec2.js';
import type { KmsKeys } from '../kms-keys.js';
import type { StateStore } from '../state-store.js';
import { imageActions } from './image-actions.js';
import { Images, type ManifestReader } from './images.js';
import { KmsAccess } from './kms-access.js';
import { snapshotActions } from './snapshot-actions.js';
import { SnapshotShares } from './snapshot-shares.js';
import { Snapshots } from './snapshots.js';
import { tagActions } from './tag-actions.js';
import { TagRegistry } from './tags.js';

export interface Ec2CloudOptions {
  readonly state: StateStore;
  readonly ebs: EbsEngine;
  readonly kms: KmsKeys;
  readonly accounts: Accounts;
  readonly now?: () => number;
  /** How long a CopyImage copy stays pending (ms, default 2000). */
  readonly copyDelayMs?: number;
  readonly readManifest?: ManifestReader;
}

export class Ec2Cloud {
  readonly snapshots: Snapshots;
  readonly images: Images;
  readonly tags: TagRegistry;

  constructor(options: Ec2CloudOptions) {
    const kms = new KmsAccess(options.kms);
    this.snapshots = new Snapshots(
      options.ebs,
      new SnapshotShares(options.state),
      kms,
      options.accounts,
    );
    this.images = new Images({
      state: options.state,
      snapshots: this.snapshots,
      kms,
      accounts: options.accounts,
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.copyDelayMs === undefined ? {} : { copyDelayMs: options.copyDelayMs }),
      ...(options.readManifest === undefined ? {} : { readManifest: options.readManifest }),
    });
    this.tags = new TagRegistry();
    this.tags.register(this.images.taggable());
    this.tags.register(this.snapshots.taggable());
  }

  /** The actions of this module (the endpoint adds DescribeRegions and others' actions). */
  actions(): Ec2Actions {
    return {
      ...snapshotActions(this.snapshots),
      ...imageActions(this.images),
      ...tagActions(this.tags),
    };
  }
}
