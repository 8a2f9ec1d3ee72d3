/**
 * The parameters of ImportImage and ImportSnapshot as the EC2 query protocol
 * sends them (botocore's ec2 model: DiskContainer.N.*, DiskContainer.*,
 * TagSpecification.N.Tag.M.*), each checked before a task exists.
 */
import { createHash } from 'node:crypto';
import { AwsError } from '../aws-error.js';
import { queryBoolean } from '../query-protocol.js';
import type { ImportDisk, ImportFormat, ImportKind, ImportTag } from './task-record.js';

export interface ImportRequest {
  readonly kind: ImportKind;
  readonly disk: ImportDisk;
  readonly description: string | null;
  readonly architecture: string | null;
  readonly bootMode: 'legacy-bios' | 'uefi' | null;
  readonly platform: string | null;
  readonly licenseType: string | null;
  readonly hypervisor: string | null;
  readonly encrypted: boolean;
  readonly kmsKeyId: string | null;
  readonly clientToken: string | null;
  readonly tags: ImportTag[];
  readonly fingerprint: string;
}

const MAX_DESCRIPTION = 255;
const MAX_TAGS = 50;
const MAX_CLIENT_TOKEN = 64;
/** S3's own limits: bucket names 3 to 63 characters, keys up to 1024 bytes of UTF-8. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const MAX_KEY_BYTES = 1024;

function invalid(message: string): AwsError {
  return new AwsError(400, 'InvalidParameterValue', message);
}

function text(params: URLSearchParams, name: string, max: number): string | null {
  const v = params.get(name);
  if (v === null) return null;
  if (v.length > max) throw invalid(`The parameter ${name} is longer than ${max} characters.`);
  return v;
}

function oneOf<T extends string>(
  params: URLSearchParams,
  name: string,
  values: readonly T[],
): T | null {
  const v = params.get(name);
  if (v === null) return null;
  if (!(values as readonly string[]).includes(v))
    throw invalid(
      `Value (${v.slice(0, 64)}) for parameter ${name} is invalid. Valid values: ${values.join(', ')}.`,
    );
  return v as T;
}

const FORMATS: Readonly<Record<string, ImportFormat>> = {
  ova: 'ova',
  vmdk: 'vmdk',
  vhd: 'vhd',
  vhdx: 'vhdx',
  raw: 'raw',
  img: 'raw',
};

/** The disk container under `prefix` (DiskContainer.1 or DiskContainer). */
function diskContainer(params: URLSearchParams, prefix: string, kind: ImportKind): ImportDisk {
  if (params.get(`${prefix}.SnapshotId`) !== null)
    throw new AwsError(
      400,
      'InvalidParameterValue',
      "Importing from an EBS snapshot (SnapshotId) is not supported by ferry's local cloud: give Url or UserBucket.",
    );
  const formatText = params.get(`${prefix}.Format`);
  let format: ImportFormat | null = null;
  if (formatText !== null) {
    const f = FORMATS[formatText.toLowerCase()];
    if (f === undefined || (kind === 'snapshot' && f === 'ova'))
      throw invalid(
        `Value (${formatText.slice(0, 32)}) for parameter Format is invalid. Valid values: ${kind === 'snapshot' ? 'VHD, VHDX, VMDK, RAW' : 'OVA, VHD, VHDX, VMDK, RAW'}.`,
      );
    format = f;
  }
  const url = params.get(`${prefix}.Url`);
  const bucketParam = params.get(`${prefix}.UserBucket.S3Bucket`);
  const keyParam = params.get(`${prefix}.UserBucket.S3Key`);
  let bucket: string;
  let key: string;
  if (url !== null) {
    if (bucketParam !== null || keyParam !== null)
      throw invalid('Give either Url or UserBucket for a disk container, not both.');
    const m = /^s3:\/\/([^/]+)\/(.+)$/s.exec(url);
    if (m === null) throw new AwsError(400, 'InvalidParameter', 'Invalid S3 source location');
    bucket = m[1]!;
    key = m[2]!;
  } else {
    if (bucketParam === null || keyParam === null)
      throw new AwsError(
        400,
        'MissingParameter',
        'The request must contain the parameter DiskContainer.Url or DiskContainer.UserBucket (S3Bucket and S3Key).',
      );
    bucket = bucketParam;
    key = keyParam;
  }
  if (
    !BUCKET.test(bucket) ||
    bucket.includes('..') ||
    key === '' ||
    Buffer.byteLength(key) > MAX_KEY_BYTES
  )
    throw new AwsError(400, 'InvalidParameter', 'Invalid S3 source location');
  const deviceName = text(params, `${prefix}.DeviceName`, 64);
  if (deviceName !== null && !/^\/dev\/(sd[a-z]|xvd[a-z])[0-9]*$/.test(deviceName))
    throw invalid(`Value (${deviceName}) for parameter DeviceName is invalid.`);
  return {
    bucket,
    key,
    url,
    format,
    description: text(params, `${prefix}.Description`, MAX_DESCRIPTION),
    deviceName,
  };
}

/** Tags from TagSpecification.N for `resourceType` (the only type a task takes). */
function tagSpecifications(params: URLSearchParams, resourceType: string): ImportTag[] {
  const tags: ImportTag[] = [];
  for (let n = 1; ; n++) {
    const type = params.get(`TagSpecification.${n}.ResourceType`);
    const hasTags = params.get(`TagSpecification.${n}.Tag.1.Key`) !== null;
    if (type === null && !hasTags) break;
    if (type !== resourceType)
      throw invalid(
        `'${(type ?? '').slice(0, 64)}' is not a valid taggable resource type for this operation. Valid: ${resourceType}.`,
      );
    for (let m = 1; ; m++) {
      const key = params.get(`TagSpecification.${n}.Tag.${m}.Key`);
      if (key === null) break;
      const value = params.get(`TagSpecification.${n}.Tag.${m}.Value`) ?? '';
      if (key.length === 0 || key.length > 128)
        throw invalid('Tag keys must be 1 to 128 characters.');
      if (value.length > 256) throw invalid('Tag values must be at most 256 characters.');
      if (key.toLowerCase().startsWith('aws:'))
        throw invalid("Tag keys starting with 'aws:' are reserved for internal use");
      if (tags.some((t) => t.key === key))
        throw invalid(`The tag key '${key}' is given more than once.`);
      tags.push({ key, value });
      if (tags.length > MAX_TAGS)
        throw new AwsError(
          400,
          'TagLimitExceeded',
          `The maximum number of tags (${MAX_TAGS}) was exceeded.`,
        );
    }
    if (n > 10) throw invalid('Too many TagSpecification entries.');
  }
  return tags;
}

function kmsKey(params: URLSearchParams, encrypted: boolean): string | null {
  const id = text(params, 'KmsKeyId', 2048);
  if (id === null) return null;
  if (!encrypted) throw invalid('KmsKeyId may be given only when Encrypted is true.');
  // The EBS engine takes key ARNs; aliases and bare ids would need KMS's lookup here.
  if (!/^arn:aws:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]{1,64}$/.test(id))
    throw invalid(
      `Value (${id.slice(0, 64)}) for parameter KmsKeyId is invalid: give the key's ARN.`,
    );
  return id;
}

function fingerprintOf(params: URLSearchParams): string {
  const pairs = [...params].filter(
    ([k]) => k !== 'Action' && k !== 'Version' && k !== 'ClientToken',
  );
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(pairs)).digest('hex');
}

/** ImportImage's parameters (one disk container: ferry imports single-disk images). */
export function importImageRequest(params: URLSearchParams): ImportRequest {
  if (![...params.keys()].some((k) => k.startsWith('DiskContainer.1.')))
    throw new AwsError(
      400,
      'MissingParameter',
      'The request must contain the parameter DiskContainer.',
    );
  if ([...params.keys()].some((k) => /^DiskContainer\.([2-9]|\d\d+)\./.test(k)))
    throw invalid(
      "ferry's local cloud imports one disk per ImportImage task; import further disks with ImportSnapshot.",
    );
  const encrypted = queryBoolean(params, 'Encrypted');
  const bootMode = params.get('BootMode');
  if (bootMode === 'uefi-preferred')
    throw invalid('The boot mode uefi-preferred is not supported for importing images.');
  return {
    kind: 'image',
    disk: diskContainer(params, 'DiskContainer.1', 'image'),
    description: text(params, 'Description', MAX_DESCRIPTION),
    architecture: oneOf(params, 'Architecture', ['i386', 'x86_64', 'arm64'] as const),
    bootMode: oneOf(params, 'BootMode', ['legacy-bios', 'uefi'] as const),
    platform: oneOf(params, 'Platform', ['Windows', 'Linux'] as const),
    licenseType: oneOf(params, 'LicenseType', ['AWS', 'BYOL'] as const),
    hypervisor: oneOf(params, 'Hypervisor', ['xen'] as const),
    encrypted,
    kmsKeyId: kmsKey(params, encrypted),
    clientToken: text(params, 'ClientToken', MAX_CLIENT_TOKEN),
    tags: tagSpecifications(params, 'import-image-task'),
    fingerprint: fingerprintOf(params),
  };
}

export function importSnapshotRequest(params: URLSearchParams): ImportRequest {
  if (![...params.keys()].some((k) => k.startsWith('DiskContainer.')))
    throw new AwsError(
      400,
      'MissingParameter',
      'The request must contain the parameter DiskContainer.',
    );
  const encrypted = queryBoolean(params, 'Encrypted');
  return {
    kind: 'snapshot',
    disk: diskContainer(params, 'DiskContainer', 'snapshot'),
    description: text(params, 'Description', MAX_DESCRIPTION),
    architecture: null,
    bootMode: null,
    platform: null,
    licenseType: null,
    hypervisor: null,
    encrypted,
    kmsKeyId: kmsKey(params, encrypted),
    clientToken: text(params, 'ClientToken', MAX_CLIENT_TOKEN),
    tags: tagSpecifications(params, 'import-snapshot-task'),
    fingerprint: fingerprintOf(params),
  };
}
