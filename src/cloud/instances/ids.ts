/** Resource ids as EC2 makes them: a prefix and 17 lowercase hex digits (8 for old ones). */
import { randomBytes } from 'node:crypto';
import { AwsError } from '../aws-error.js';

export function newId(prefix: 'i' | 'r' | 'vol'): string {
  return `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

const INSTANCE_ID = /^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;

export function isInstanceId(id: string): boolean {
  return INSTANCE_ID.test(id);
}

/** InvalidInstanceID.Malformed for anything that is not an instance id. */
export function checkInstanceId(id: string): void {
  if (!isInstanceId(id))
    throw new AwsError(
      400,
      'InvalidInstanceID.Malformed',
      `Invalid id: "${id.slice(0, 64)}" (expecting "i-...")`,
    );
}

/** An AMI id, as RunInstances checks before asking the image registry. */
export function checkImageId(id: string): void {
  if (!/^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$/.test(id))
    throw new AwsError(
      400,
      'InvalidAMIID.Malformed',
      `Invalid id: "${id.slice(0, 64)}" (expecting "ami-...")`,
    );
}

/** A snapshot id safe to become part of a cache file name. */
export function isSnapshotId(id: string): boolean {
  return /^snap-(?:[0-9a-f]{8}|[0-9a-f]{17})$/.test(id);
}
