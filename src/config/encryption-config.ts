/**
 * A target's EBS encryption: none, the account's default EBS key, one KMS
 * key for every region, or one per region. Normalised to a key per region.
 */
import type { MapReader } from './schema-reader.js';
import { configInvalid, type YamlNode } from './yaml-tree.js';

export type EncryptionConfig =
  | { readonly kind: 'none' }
  | { readonly kind: 'default' }
  /** A KMS key (id, alias/NAME, or ARN) for each of the target's regions. */
  | { readonly kind: 'kms'; readonly keyByRegion: Readonly<Record<string, string>> };

const KMS_KEY =
  /^(?:alias\/[\w/-]{1,250}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key|alias)\/[\w/-]{1,250})$/;
const ARN_REGION = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/;

function key(path: string, node: YamlNode, name: string): string {
  if (node.kind !== 'scalar' || typeof node.value !== 'string' || !KMS_KEY.test(node.value))
    throw configInvalid(path, node.line, `${name} must be a KMS key id, alias/NAME or key ARN`);
  return node.value;
}

/** The KMS key for `region`, or undefined (none, or the account's default key). */
export function kmsKeyFor(encryption: EncryptionConfig, region: string): string | undefined {
  return encryption.kind === 'kms' ? encryption.keyByRegion[region] : undefined;
}

/** Reads `encryption` of a target whose regions are `regions` (default: none). */
export function parseEncryption(target: MapReader, regions: readonly string[]): EncryptionConfig {
  const e = target.get('encryption');
  if (e === undefined) return { kind: 'none' };
  const name = target.nameOf('encryption');
  const v = e.value;
  if (v.kind === 'scalar') {
    if (v.value === 'none' || v.value === 'default') return { kind: v.value };
    throw target.fail(
      v.line,
      `${name} must be none, default, {kmsKey: KEY} or {kmsKeys: {REGION: KEY}}`,
    );
  }
  const map = target.map('encryption', ['kmsKey', 'kmsKeys'])!;
  const one = map.get('kmsKey');
  const many = map.map('kmsKeys', null);
  if ((one === undefined) === (many === undefined))
    throw map.fail(e.keyLine, `${name} needs exactly one of kmsKey and kmsKeys`);
  const keyByRegion: Record<string, string> = {};
  if (one !== undefined) {
    const k = key(map.path, one.value, map.nameOf('kmsKey'));
    const arnRegion = ARN_REGION.exec(k)?.[1];
    const other = regions.find((r) => r !== arnRegion);
    if (arnRegion !== undefined && other !== undefined)
      throw map.fail(
        one.value.line,
        `${map.nameOf('kmsKey')} is a key of ${arnRegion}, and the target also publishes to ${other}: use kmsKeys`,
      );
    for (const r of regions) keyByRegion[r] = k;
  } else {
    for (const entry of many!.entries()) {
      if (!regions.includes(entry.key))
        throw map.fail(
          entry.keyLine,
          `${many!.nameOf(entry.key)}: ${entry.key} is not one of the target's regions`,
        );
      const k = key(map.path, entry.value, many!.nameOf(entry.key));
      const arnRegion = ARN_REGION.exec(k)?.[1];
      if (arnRegion !== undefined && arnRegion !== entry.key)
        throw map.fail(
          entry.value.line,
          `${many!.nameOf(entry.key)} is a key of ${arnRegion}, not of ${entry.key}`,
        );
      keyByRegion[entry.key] = k;
    }
    const missing = regions.find((r) => keyByRegion[r] === undefined);
    if (missing !== undefined)
      throw map.fail(many!.line, `${many!.name} has no key for ${missing}`);
  }
  return { kind: 'kms', keyByRegion };
}
