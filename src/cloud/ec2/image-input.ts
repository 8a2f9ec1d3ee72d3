/**
 * RegisterImage's input, as the EC2 action parses it and as other
 * components (import tasks) give it, and the rules on its fields that need
 * no state: AMI names, device names, block device mappings.
 */
import {
  ec2Error,
  invalidCombination,
  invalidValue,
  missing,
  snapshotMalformed,
} from './errors.js';
import { isId } from './ids.js';
import type { Architecture, BootMode, VolumeType } from './image-record.js';
import { VOLUME_TYPES } from './image-record.js';
import type { Tag } from './tags.js';

export interface EbsInput {
  readonly snapshotId?: string;
  readonly volumeSize?: number;
  readonly volumeType?: VolumeType;
  readonly deleteOnTermination?: boolean;
  readonly encrypted?: boolean;
  readonly kmsKeyId?: string;
  readonly iops?: number;
  readonly throughput?: number;
}

export interface BlockDeviceMappingInput {
  readonly deviceName: string;
  readonly virtualName?: string;
  readonly noDevice?: boolean;
  readonly ebs?: EbsInput;
}

export interface RegisterImageInput {
  readonly name: string;
  readonly description?: string;
  /** AWS's default for an EBS image is i386 (and paravirtual below): send both. */
  readonly architecture?: Architecture;
  readonly virtualizationType?: 'hvm' | 'paravirtual';
  readonly rootDeviceName?: string;
  readonly blockDeviceMappings?: readonly BlockDeviceMappingInput[];
  /** bucket/key of a bundle manifest: an instance-store image. */
  readonly imageLocation?: string;
  readonly bootMode?: BootMode;
  readonly enaSupport?: boolean;
  readonly sriovNetSupport?: string;
  readonly imdsSupport?: 'v2.0';
  readonly tpmSupport?: 'v2.0';
  readonly uefiData?: string;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  readonly tags?: readonly Tag[];
  /**
   * Makes the call idempotent for programmatic callers (an import task
   * registering again after a restart): the same token and input answer the
   * image made the first time; the token with other input is refused
   * (IdempotentParameterMismatch). RegisterImage's wire form has no token.
   */
  readonly clientToken?: string;
}

export const MAX_DESCRIPTION = 255;
export const MAX_MAPPINGS = 64;
/** UefiData's length limit in AWS's API reference (base64 characters). */
const MAX_UEFI_DATA = 64 * 1024;

/** AMI names: 3 to 128 of letters, digits and ( ) [ ] space . / - ' @ _ */
export function checkImageName(name: string): void {
  if (name.length < 3 || name.length > 128 || !/^[A-Za-z0-9()[\] ./\-'@_]+$/.test(name))
    throw ec2Error(
      'InvalidAMIName.Malformed',
      "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '[', ']', ' ', '.', '/', '-', ''', '@' and '_'",
    );
}

export function checkDescription(description: string | undefined): void {
  if (description !== undefined && description.length > MAX_DESCRIPTION)
    throw invalidValue(`The description is longer than ${MAX_DESCRIPTION} characters.`);
}

const DEVICE =
  /^(\/dev\/)?(sd[a-z][0-9]{0,2}|xvd[a-z]{1,2}[0-9]{0,2}|hd[a-z][0-9]{0,2}|nvme[0-9]{1,2}n[0-9]{1,2}|vd[a-z][0-9]{0,2})$/;

function invalidMapping(message: string): Error {
  return ec2Error('InvalidBlockDeviceMapping', message);
}

/** Stateless checks of an image's input; the service checks snapshots, names and keys. */
export function checkRegisterInput(input: RegisterImageInput): void {
  if (input.name === '') throw missing('name');
  if (
    input.clientToken !== undefined &&
    (input.clientToken.length === 0 || input.clientToken.length > 128)
  )
    throw invalidValue('The client token must be 1 to 128 characters.');
  checkImageName(input.name);
  checkDescription(input.description);
  if (input.sriovNetSupport !== undefined && input.sriovNetSupport !== 'simple')
    throw invalidValue(
      `Value (${input.sriovNetSupport.slice(0, 32)}) for parameter sriovNetSupport is invalid. Expected: 'simple'.`,
    );
  if (input.tpmSupport !== undefined && input.bootMode !== 'uefi')
    throw invalidCombination('NitroTPM (TpmSupport v2.0) requires the uefi boot mode.');
  if (input.architecture === 'arm64' && input.bootMode === 'legacy-bios')
    throw invalidCombination('The legacy-bios boot mode is not supported for arm64 images.');
  if (input.uefiData !== undefined) {
    if (input.uefiData.length > MAX_UEFI_DATA || !/^[A-Za-z0-9+/]*={0,2}$/.test(input.uefiData))
      throw invalidValue(`UefiData must be base64 of at most ${MAX_UEFI_DATA} characters.`);
    if (input.bootMode === 'legacy-bios')
      throw invalidCombination('UefiData needs a uefi boot mode.');
  }
  if (input.kernelId !== undefined && !isId(input.kernelId, 'aki'))
    throw ec2Error(
      'InvalidAMIID.Malformed',
      `Invalid id: "${input.kernelId.slice(0, 64)}" (expecting "aki-...")`,
    );
  if (input.ramdiskId !== undefined && !isId(input.ramdiskId, 'ari'))
    throw ec2Error(
      'InvalidAMIID.Malformed',
      `Invalid id: "${input.ramdiskId.slice(0, 64)}" (expecting "ari-...")`,
    );
  if (input.enaSupport === true && input.virtualizationType !== 'hvm')
    throw invalidCombination('Enhanced networking with the ENA is supported only for hvm images.');
  const mappings = input.blockDeviceMappings ?? [];
  if (mappings.length > MAX_MAPPINGS)
    throw invalidMapping(`An image can have at most ${MAX_MAPPINGS} block device mappings.`);
  const names = new Set<string>();
  for (const m of mappings) {
    if (m.deviceName === '') throw missing('BlockDeviceMapping.deviceName');
    if (!DEVICE.test(m.deviceName))
      throw invalidMapping(`Invalid device name ${m.deviceName.slice(0, 64)}`);
    const bare = m.deviceName.replace(/^\/dev\//, '');
    if (names.has(bare))
      throw invalidMapping(`The device name ${m.deviceName} is used more than once.`);
    names.add(bare);
    const kinds = [m.ebs !== undefined, m.virtualName !== undefined, m.noDevice === true].filter(
      Boolean,
    );
    if (kinds.length !== 1)
      throw invalidMapping(
        `The mapping of ${m.deviceName} must have exactly one of Ebs, VirtualName and NoDevice.`,
      );
    if (m.virtualName !== undefined && !/^ephemeral([0-9]|1[0-9]|2[0-3])$/.test(m.virtualName))
      throw invalidMapping(
        `Invalid virtual name ${m.virtualName.slice(0, 32)}: expected ephemeral0 to ephemeral23.`,
      );
    if (m.ebs !== undefined) checkEbs(m.deviceName, m.ebs);
  }
  if (input.imageLocation !== undefined) {
    if (mappings.some((m) => m.ebs?.snapshotId !== undefined))
      throw invalidCombination(
        'An instance-store image (ImageLocation) cannot have EBS snapshot mappings.',
      );
    return;
  }
  if (input.rootDeviceName === undefined) throw missing('rootDeviceName');
  if (!DEVICE.test(input.rootDeviceName))
    throw invalidMapping(`Invalid device name ${input.rootDeviceName.slice(0, 64)}`);
  const root = mappings.find(
    (m) => m.deviceName.replace(/^\/dev\//, '') === input.rootDeviceName!.replace(/^\/dev\//, ''),
  );
  if (root === undefined)
    throw invalidMapping(
      `The root device name ${input.rootDeviceName} does not match a block device mapping.`,
    );
  if (root.ebs?.snapshotId === undefined)
    throw invalidMapping(
      `The root device ${input.rootDeviceName} must be an EBS volume made from a snapshot.`,
    );
}

function checkEbs(device: string, ebs: EbsInput): void {
  if (ebs.snapshotId !== undefined && !isId(ebs.snapshotId, 'snap'))
    throw snapshotMalformed(ebs.snapshotId);
  if (ebs.snapshotId === undefined && ebs.volumeSize === undefined)
    throw invalidMapping(`The EBS mapping of ${device} needs a SnapshotId or a VolumeSize.`);
  const type = ebs.volumeType ?? 'gp2';
  if (!VOLUME_TYPES.includes(type))
    throw invalidValue(`Invalid volume type ${String(type).slice(0, 16)}`);
  const max = type === 'gp3' || type === 'io2' ? 65536 : 16384;
  if (ebs.volumeSize !== undefined && (ebs.volumeSize < 1 || ebs.volumeSize > max))
    throw invalidValue(
      `Volume size ${ebs.volumeSize} GiB is out of range for ${type}: 1 to ${max}.`,
    );
  if (ebs.iops !== undefined && !['io1', 'io2', 'gp3'].includes(type))
    throw invalidCombination(`Iops is not supported for the ${type} volume type.`);
  if (ebs.throughput !== undefined && type !== 'gp3')
    throw invalidCombination('Throughput is supported only for gp3 volumes.');
  if (ebs.kmsKeyId !== undefined && ebs.snapshotId !== undefined)
    throw invalidCombination(
      "KmsKeyId cannot be given for a mapping made from a snapshot: the volume takes the snapshot's key.",
    );
}
