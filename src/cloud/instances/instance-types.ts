/**
 * The instance types the local cloud runs: a small table of real EC2 types
 * with their vCPUs and memory, which become QEMU's -smp and -m. Anything
 * else is refused as EC2 refuses an unknown type.
 */
import { AwsError } from '../aws-error.js';

export interface InstanceTypeInfo {
  readonly name: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly architecture: 'x86_64';
}

const TABLE: ReadonlyArray<readonly [string, number, number]> = [
  ['m1.small', 1, 1740],
  ['t2.nano', 1, 512],
  ['t2.micro', 1, 1024],
  ['t2.small', 1, 2048],
  ['t2.medium', 2, 4096],
  ['t3.nano', 2, 512],
  ['t3.micro', 2, 1024],
  ['t3.small', 2, 2048],
  ['t3.medium', 2, 4096],
  ['t3.large', 2, 8192],
  ['t3a.micro', 2, 1024],
  ['t3a.small', 2, 2048],
  ['m5.large', 2, 8192],
  ['c5.large', 2, 4096],
];

export const INSTANCE_TYPES: ReadonlyMap<string, InstanceTypeInfo> = new Map(
  TABLE.map(([name, vcpus, memoryMiB]) => [
    name,
    { name, vcpus, memoryMiB, architecture: 'x86_64' as const },
  ]),
);

/** EC2's default when RunInstances names no type. */
export const DEFAULT_INSTANCE_TYPE = 'm1.small';

/** The type's sizes, or InvalidParameterValue as EC2 answers an unknown type. */
export function instanceType(name: string): InstanceTypeInfo {
  const info = INSTANCE_TYPES.get(name);
  if (info === undefined)
    throw new AwsError(400, 'InvalidParameterValue', `Invalid value '${name}' for InstanceType.`);
  return info;
}
