/**
 * User tags of a target, within AWS's limits: keys up to 128 characters,
 * values up to 256, and 50 tags a resource, of which ferry's own take
 * TAG's count. `aws:` is AWS's prefix and `ferry:` is ferry's.
 */
import { TAG } from '../publish/types.js';
import type { MapReader } from './schema-reader.js';

export const MAX_TAG_KEY = 128;
export const MAX_TAG_VALUE = 256;
/** AWS's per-resource limit, less what ferry puts on every resource. */
export const MAX_USER_TAGS = 50 - Object.keys(TAG).length;

export function parseTags(map: MapReader | undefined): Readonly<Record<string, string>> {
  // Object.fromEntries defines own properties: a "__proto__" tag stays a tag.
  const tags: Array<[string, string]> = [];
  if (map === undefined) return {};
  const entries = map.entries();
  if (entries.length > MAX_USER_TAGS)
    throw map.fail(
      map.line,
      `${map.name} has ${entries.length} tags; at most ${MAX_USER_TAGS} (AWS allows 50 and ferry adds ${Object.keys(TAG).length})`,
    );
  for (const { key, keyLine, value } of entries) {
    const name = map.nameOf(key);
    if (key === '' || key.length > MAX_TAG_KEY)
      throw map.fail(
        keyLine,
        `tag key "${key.slice(0, 40)}" must be 1 to ${MAX_TAG_KEY} characters`,
      );
    const lower = key.toLowerCase();
    if (lower.startsWith('aws:'))
      throw map.fail(keyLine, `tag key "${key}": the aws: prefix is reserved by AWS`);
    if (lower.startsWith('ferry:'))
      throw map.fail(
        keyLine,
        `tag key "${key}": the ferry: prefix is reserved for ferry's own tags`,
      );
    if (value.kind !== 'scalar' || typeof value.value !== 'string')
      throw map.fail(value.line, `${name} must be a string (quote numbers and booleans)`);
    if (value.value.length > MAX_TAG_VALUE)
      throw map.fail(value.line, `${name} is over ${MAX_TAG_VALUE} characters`);
    tags.push([key, value.value]);
  }
  return Object.fromEntries(tags);
}
