/**
 * An image (AMI) as the images service keeps it, in the owner's
 * `ec2-images` document for the region.
 */
import type { BundleManifest } from './manifest.js';
import type { Tag } from './tags.js';

export type ImageState = 'pending' | 'available';
export type Architecture = 'i386' | 'x86_64' | 'arm64' | 'x86_64_mac' | 'arm64_mac';
export type BootMode = 'legacy-bios' | 'uefi' | 'uefi-preferred';
export type VolumeType = 'standard' | 'io1' | 'io2' | 'gp2' | 'sc1' | 'st1' | 'gp3';

export const ARCHITECTURES: readonly Architecture[] = [
  'i386',
  'x86_64',
  'arm64',
  'x86_64_mac',
  'arm64_mac',
];
export const BOOT_MODES: readonly BootMode[] = ['legacy-bios', 'uefi', 'uefi-preferred'];
export const VOLUME_TYPES: readonly VolumeType[] = [
  'standard',
  'io1',
  'io2',
  'gp2',
  'sc1',
  'st1',
  'gp3',
];

export interface ImageBlockDevice {
  readonly deviceName: string;
  /** An EBS volume made from this snapshot (of `snapshotOwnerId`, the image owner unless shared). */
  readonly snapshotId?: string;
  readonly snapshotOwnerId?: string;
  /** GiB. */
  readonly volumeSize?: number;
  readonly volumeType?: VolumeType;
  readonly deleteOnTermination?: boolean;
  readonly iops?: number;
  readonly throughput?: number;
  readonly encrypted?: boolean;
  readonly kmsKeyId?: string;
  /** An instance store volume (ephemeralN). */
  readonly virtualName?: string;
  /** The device is suppressed. */
  readonly noDevice?: boolean;
}

export interface ImageRecord {
  readonly imageId: string;
  readonly ownerId: string;
  readonly region: string;
  readonly name: string;
  readonly description?: string;
  /** pending until `availableAt` (ms), then available (a copy takes a while, as in AWS). */
  readonly state: ImageState;
  readonly availableAt: number;
  /** Epoch ms. */
  readonly creationTime: number;
  readonly imageType: 'machine' | 'kernel' | 'ramdisk';
  readonly architecture: Architecture;
  readonly virtualizationType: 'hvm' | 'paravirtual';
  readonly rootDeviceType: 'ebs' | 'instance-store';
  readonly rootDeviceName: string;
  readonly blockDeviceMappings: readonly ImageBlockDevice[];
  readonly bootMode?: BootMode;
  readonly enaSupport?: boolean;
  readonly sriovNetSupport?: 'simple';
  readonly imdsSupport?: 'v2.0';
  readonly tpmSupport?: 'v2.0';
  /** Base64 UEFI variable store. */
  readonly uefiData?: string;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  /** bucket/key of an instance-store image's bundle manifest. */
  readonly imageLocation?: string;
  readonly manifest?: BundleManifest;
  /** Whether any of its EBS snapshots is encrypted. */
  readonly encrypted: boolean;
  readonly tags: readonly Tag[];
  /** Accounts given launch permission, and `all`. */
  readonly launchUsers: readonly string[];
  readonly public: boolean;
  readonly sourceImageId?: string;
  readonly sourceImageRegion?: string;
}

/** The record with its state as of `now`. */
export function currentImage(r: ImageRecord, now: number): ImageRecord {
  return r.state === 'pending' && now >= r.availableAt ? { ...r, state: 'available' } : r;
}
