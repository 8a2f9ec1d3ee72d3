/**
 * A target of ferry.yaml: one account of a cloud and the regions it gets
 * images in: AWS (and AWS-compatible endpoints such as the local cloud) or
 * OpenStack (openstack-target-config.ts); the union is discriminated on `type`.
 */
import { isRegion } from '../cloud/regions.js';
import {
  CREDENTIALS_KEYS,
  type CredentialsConfig,
  parseCredentials,
} from './credentials-config.js';
import { type EncryptionConfig, parseEncryption } from './encryption-config.js';
import {
  OPENSTACK_TARGET_KEYS,
  type OpenStackTargetConfig,
  parseOpenStackTarget,
} from './openstack-target-config.js';
import { MapReader, scalarString } from './schema-reader.js';
import { parseTags } from './tags-config.js';
import { parseRetention, parseTargetStreams } from './target-common.js';
import { configInvalid, type YamlEntry } from './yaml-tree.js';

export type AwsMethod = 'ebs-direct' | 'vm-import';

export interface AwsTargetConfig {
  readonly type: 'aws';
  readonly name: string;
  /** Default ebs-direct. */
  readonly method: AwsMethod;
  /** 'local' (the embedded local cloud), an http(s) URL, or absent for AWS itself. */
  readonly endpoint?: string;
  readonly credentials: CredentialsConfig;
  /** At least one, no duplicates, in file order. */
  readonly regions: readonly string[];
  /** Default none. */
  readonly encryption: EncryptionConfig;
  readonly shareWith: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  /** Absent: keep every image. */
  readonly retention?: { readonly keep: number };
  /** vm-import only (and required there): the S3 bucket the disk is uploaded to. */
  readonly bucket?: string;
  /** Blocks (or parts) in flight per region of this target (default: --concurrency, else 16). */
  readonly concurrency?: number;
  /** vm-import: minutes an import task may show no progress before it is cancelled (default 15). */
  readonly stallMinutes?: number;
  /** The streams published here (default: every stream), all defined. */
  readonly streams: readonly string[];
}

/** One union member per cloud; `type` tells them apart. */
export type TargetConfig = AwsTargetConfig | OpenStackTargetConfig;

export const MAX_REGIONS = 32;
/** As many as a file can define. */
const _MAX_STREAMS_PER_TARGET = 64;
/** Accounts one image is shared with (AWS allows 500 launch permissions per image). */
export const MAX_SHARES = 500;
const ACCOUNT = /^\d{12}$/;
/** S3's bucket naming rules (no dots: virtual-host TLS breaks on them). */
const BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

export const AWS_TARGET_KEYS = [
  'type',
  'method',
  'endpoint',
  'credentials',
  'regions',
  'encryption',
  'shareWith',
  'tags',
  'retention',
  'bucket',
  'streams',
  'concurrency',
  'stallMinutes',
] as const;

function parseEndpoint(map: MapReader): string | undefined {
  const endpoint = map.string('endpoint', 'local or an http(s) URL');
  if (endpoint === undefined || endpoint === 'local') return endpoint;
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.username !== '' ||
    url.password !== ''
  )
    throw map.fail(
      map.get('endpoint')!.value.line,
      `${map.nameOf('endpoint')} must be local or an http(s) URL (no user or password in it)`,
    );
  return endpoint;
}

/** Reads `targets.NAME` (the entry), by its type; `streams` are the names the file defines. */
export function parseTarget(
  path: string,
  entry: YamlEntry,
  streams: readonly string[],
): TargetConfig {
  const name = entry.key;
  const any = new MapReader(path, entry.value, `targets.${name}`, entry.keyLine, null);
  const typeEntry = any.get('type');
  if (typeEntry === undefined)
    throw any.fail(any.line, `${any.name} needs "type" (aws or openstack)`);
  const type = any.string('type');
  if (type === 'openstack')
    return parseOpenStackTarget(
      new MapReader(path, entry.value, any.name, entry.keyLine, OPENSTACK_TARGET_KEYS),
      name,
      streams,
    );
  if (type !== 'aws')
    throw any.fail(typeEntry.value.line, `${any.nameOf('type')} must be aws or openstack`);
  return parseAwsTarget(
    new MapReader(path, entry.value, any.name, entry.keyLine, AWS_TARGET_KEYS),
    name,
    streams,
  );
}

function parseAwsTarget(map: MapReader, name: string, streams: readonly string[]): AwsTargetConfig {
  const path = map.path;
  const method = map.oneOf('method', ['ebs-direct', 'vm-import'] as const) ?? 'ebs-direct';
  const endpoint = parseEndpoint(map);
  const credentials = parseCredentials(map.map('credentials', CREDENTIALS_KEYS));
  map.required('regions');
  const regions = map.list('regions', MAX_REGIONS, (node, n) => {
    const r = scalarString(path, node, n, 'a region name');
    if (!isRegion(r)) throw configInvalid(path, node.line, `${n}: ${r} is not an AWS region`);
    return { r, line: node.line };
  })!;
  if (regions.length === 0)
    throw map.fail(map.get('regions')!.value.line, `${map.nameOf('regions')} is empty`);
  const seen = new Set<string>();
  for (const { r, line } of regions) {
    if (seen.has(r)) throw map.fail(line, `${map.nameOf('regions')} names ${r} twice`);
    seen.add(r);
  }
  const regionNames = regions.map((x) => x.r);
  const encryption = parseEncryption(map, regionNames);
  const shareWith =
    map.list('shareWith', MAX_SHARES, (node, n) => {
      // An unquoted 12-digit id reads as a number; 12 digits cannot have lost a leading zero.
      const text =
        node.kind === 'scalar' && typeof node.value === 'number'
          ? String(node.value)
          : node.kind === 'scalar'
            ? node.value
            : null;
      if (typeof text !== 'string' || !ACCOUNT.test(text))
        throw configInvalid(path, node.line, `${n} must be a 12-digit AWS account id (quote it)`);
      return text;
    }) ?? [];
  if (new Set(shareWith).size !== shareWith.length)
    throw map.fail(
      map.get('shareWith')!.value.line,
      `${map.nameOf('shareWith')} names an account twice`,
    );
  // AWS refuses to share snapshots encrypted with the account's default EBS
  // key; say so before anything is uploaded, not after.
  if (shareWith.length > 0 && encryption.kind === 'default')
    throw map.fail(
      map.get('shareWith')!.value.line,
      `${map.nameOf('shareWith')} needs encryption with a KMS key (kmsKey or kmsKeys): AWS cannot share snapshots encrypted with the default EBS key`,
    );
  const tags = parseTags(map.map('tags', null));
  const retention = parseRetention(map);
  const bucket = map.string('bucket', 'an S3 bucket name');
  if (bucket !== undefined && !BUCKET.test(bucket))
    throw map.fail(
      map.get('bucket')!.value.line,
      `${map.nameOf('bucket')} must be an S3 bucket name (3 to 63 of a-z 0-9 -)`,
    );
  if (method === 'vm-import' && bucket === undefined)
    throw map.fail(
      map.get('method')!.value.line,
      `${map.name}: vm-import needs "bucket" (where the disk is uploaded)`,
    );
  if (method === 'ebs-direct' && bucket !== undefined)
    throw map.fail(
      map.get('bucket')!.keyLine,
      `${map.nameOf('bucket')} is for method vm-import only`,
    );
  const concurrency = map.integer('concurrency', 1, 256);
  const stallMinutes = map.integer('stallMinutes', 1, 1440);
  if (method !== 'vm-import' && stallMinutes !== undefined)
    throw map.fail(
      map.get('stallMinutes')!.keyLine,
      `${map.nameOf('stallMinutes')} is for method vm-import only`,
    );
  const targetStreams = parseTargetStreams(map, streams);
  return {
    type: 'aws',
    name,
    method,
    ...(endpoint === undefined ? {} : { endpoint }),
    credentials,
    regions: regionNames,
    encryption,
    shareWith,
    tags,
    ...(retention === undefined ? {} : { retention }),
    ...(bucket === undefined ? {} : { bucket }),
    ...(concurrency === undefined ? {} : { concurrency }),
    ...(stallMinutes === undefined ? {} : { stallMinutes }),
    streams: targetStreams,
  };
}
