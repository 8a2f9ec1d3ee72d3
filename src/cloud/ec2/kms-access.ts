/**
 * The KMS checks EC2 makes for encrypted snapshots and images: a key named
 * in a request must exist in the destination region and be usable by the
 * caller (its own key, or another account's whose policy allows it), and a
 * snapshot's own key must be usable to read it.
 */
import { isAwsError } from '../aws-error.js';
import { canUse, type KmsKey, type KmsKeys } from '../kms-keys.js';
import { ec2Error } from './errors.js';
import type { Caller } from './tags.js';

export class KmsAccess {
  private readonly kms: KmsKeys;

  constructor(kms: KmsKeys) {
    this.kms = kms;
  }

  /** The key an ARN names, if it exists. */
  async byArn(arn: string): Promise<KmsKey | undefined> {
    const m = /^arn:aws:kms:([a-z0-9-]{1,40}):(\d{12}):key\/([0-9a-f-]{36})$/.exec(arn);
    if (m === null) return undefined;
    try {
      return (await this.kms.keys(m[2]!, m[1]!)).find((k) => k.arn === arn);
    } catch {
      return undefined;
    }
  }

  /** May the caller decrypt data under `arn` (a snapshot's key)? */
  async usable(caller: Caller, arn: string | null): Promise<boolean> {
    if (arn === null) return true;
    const key = await this.byArn(arn);
    return key?.enabled === true && canUse(key, caller.account);
  }

  /** Is `arn` an AWS managed key (alias/aws/ebs), which AWS never lets another account use? */
  async isAwsManaged(arn: string | null): Promise<boolean> {
    if (arn === null) return false;
    return (await this.byArn(arn))?.keyManager === 'AWS';
  }

  /**
   * The key a KmsKeyId parameter (id, alias, key or alias ARN) names, in
   * the caller's region, checked for use by the caller.
   */
  async resolve(caller: Caller, ref: string, principal: string): Promise<KmsKey> {
    const arnRegion = /^arn:aws:kms:([a-z0-9-]+):/.exec(ref)?.[1];
    if (arnRegion !== undefined && arnRegion !== caller.region)
      throw ec2Error(
        'InvalidParameterValue',
        `The KMS key ${ref} is in ${arnRegion}; the copy is made in ${caller.region}, so its key must be there.`,
      );
    try {
      const key = await this.kms.resolve(
        caller.account,
        caller.region,
        ref,
        'kms:CreateGrant',
        principal,
      );
      if (!key.enabled)
        throw ec2Error('InvalidParameterValue', `The KMS key ${key.arn} is not enabled.`);
      return key;
    } catch (error) {
      if (isAwsError(error) && error.code === 'NotFoundException')
        throw ec2Error(
          'InvalidParameterValue',
          `The KMS key ${ref.slice(0, 256)} does not exist in ${caller.region}.`,
        );
      if (isAwsError(error) && error.code === 'AccessDeniedException')
        throw ec2Error(
          'InvalidParameterValue',
          `The KMS key ${ref.slice(0, 256)} may not be used by account ${caller.account}: its key policy does not allow it.`,
        );
      throw error;
    }
  }
}
