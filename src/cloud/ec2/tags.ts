/**
 * EC2 tags over any kind of resource. A component that owns ids (images,
 * snapshots, instances, import tasks) registers a `TaggableKind` for its id
 * prefix; CreateTags, DeleteTags, DescribeTags and the TagSpecifications of
 * create actions all go through this registry, so the limits are checked in
 * one place: 50 tags a resource, keys of 1 to 128 characters, values up to
 * 256, and the `aws:` prefix reserved.
 */
import type { AwsError } from '../aws-error.js';
import { ec2Error, invalidValue } from './errors.js';
import type { QueryReader } from './query-reader.js';

export interface Tag {
  readonly key: string;
  readonly value: string;
}

export interface Caller {
  readonly account: string;
  readonly region: string;
}

export const MAX_TAGS = 50;
export const MAX_TAG_KEY = 128;
export const MAX_TAG_VALUE = 256;

/** What the registry needs of a kind of resource. */
export interface TaggableKind {
  /** The EC2 resource type (`image`, `snapshot`, `instance`, `import-image-task`, …). */
  readonly resourceType: string;
  /** The id prefix, dash included (`ami-`). */
  readonly prefix: string;
  /** The error for an id of this kind the caller does not own. */
  notFound(id: string): AwsError;
  /** Does the caller own this resource? */
  exists(caller: Caller, id: string): Promise<boolean>;
  /** Replaces the resource's tags with `change(current)`, atomically; throws notFound if gone. */
  updateTags(
    caller: Caller,
    id: string,
    change: (tags: readonly Tag[]) => readonly Tag[],
  ): Promise<void>;
  /** The caller's resources of this kind with their tags. */
  list(
    caller: Caller,
  ): Promise<ReadonlyArray<{ readonly id: string; readonly tags: readonly Tag[] }>>;
}

export interface TagDescription extends Tag {
  readonly resourceId: string;
  readonly resourceType: string;
}

/** Checks one tag as CreateTags and TagSpecifications do. */
export function checkTag(tag: Tag): void {
  if (tag.key.length === 0 || tag.key.length > MAX_TAG_KEY)
    throw invalidValue(
      `Value (${tag.key.slice(0, 200)}) for parameter key is invalid. Tag keys must be 1 to ${MAX_TAG_KEY} characters.`,
    );
  if (tag.key.toLowerCase().startsWith('aws:'))
    throw invalidValue(
      `Value (${tag.key}) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use`,
    );
  if (tag.value.length > MAX_TAG_VALUE)
    throw invalidValue(
      `Value (${tag.value.slice(0, 300)}) for parameter value is invalid. Tag values must be at most ${MAX_TAG_VALUE} characters.`,
    );
}

/** `current` with `added` set (a key given again replaces its value), within the limit. */
export function mergeTags(current: readonly Tag[], added: readonly Tag[]): Tag[] {
  const map = new Map(current.map((t) => [t.key, t.value]));
  for (const t of added) map.set(t.key, t.value);
  if (map.size > MAX_TAGS)
    throw ec2Error(
      'TagLimitExceeded',
      'The maximum number of Tags for a resource has been reached.',
    );
  return [...map].map(([key, value]) => ({ key, value }));
}

/** `current` less the tags named: by key alone, or by key and value (`value` given). */
export function removeTags(current: readonly Tag[], removed: readonly DeleteTag[]): Tag[] {
  return current.filter(
    (t) => !removed.some((r) => r.key === t.key && (r.value === undefined || r.value === t.value)),
  );
}

export interface DeleteTag {
  readonly key: string;
  readonly value?: string;
}

/** `Tag.N.Key` / `Tag.N.Value` of a request (a missing value is the empty string). */
export function readTags(q: QueryReader, prefix = 'Tag'): Tag[] {
  const tags = q.structs(prefix, MAX_TAGS + 1).map((t) => ({
    key: t.string('Key', { max: MAX_TAG_KEY * 4 }) ?? '',
    value: t.string('Value', { max: MAX_TAG_VALUE * 4 }) ?? '',
  }));
  for (const t of tags) checkTag(t);
  if (tags.length > MAX_TAGS)
    throw ec2Error(
      'TagLimitExceeded',
      'The maximum number of Tags for a resource has been reached.',
    );
  return tags;
}

/**
 * The tags `TagSpecification.N` give for `resourceType`, refusing specs for
 * types the action does not create.
 */
export function readTagSpecifications(
  q: QueryReader,
  allowed: readonly string[],
): Map<string, Tag[]> {
  const out = new Map<string, Tag[]>();
  for (const spec of q.structs('TagSpecification', 10)) {
    const type = spec.string('ResourceType', { max: 64 }) ?? '';
    if (!allowed.includes(type))
      throw invalidValue(`'${type}' is not a valid taggable resource type for this operation.`);
    const tags = readTags(spec);
    if (tags.length === 0) throw invalidValue('Tag specification must have at least one tag');
    out.set(type, mergeTags(out.get(type) ?? [], tags));
  }
  return out;
}

export class TagRegistry {
  private readonly kinds: TaggableKind[] = [];

  /** Adds a kind of resource (a later kind with the same prefix replaces the earlier one). */
  register(kind: TaggableKind): void {
    const i = this.kinds.findIndex((k) => k.prefix === kind.prefix);
    if (i >= 0) this.kinds.splice(i, 1);
    this.kinds.push(kind);
    // The longest prefix wins: import-ami- before i-.
    this.kinds.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  resourceTypes(): string[] {
    return this.kinds.map((k) => k.resourceType);
  }

  private kindOf(id: string): TaggableKind {
    const kind = this.kinds.find(
      (k) =>
        id.startsWith(k.prefix) && /^[0-9a-f]{8}([0-9a-f]{9})?$/.test(id.slice(k.prefix.length)),
    );
    if (kind === undefined)
      throw ec2Error('InvalidID', `The ID '${id.slice(0, 128)}' is not valid`);
    return kind;
  }

  /** Adds or replaces tags on each resource; every id is checked before any is changed. */
  async create(caller: Caller, ids: readonly string[], tags: readonly Tag[]): Promise<void> {
    for (const t of tags) checkTag(t);
    const resolved = await this.resolve(caller, ids);
    for (const [id, kind] of resolved) {
      await kind.updateTags(caller, id, (current) => mergeTags(current, tags));
    }
  }

  /** Removes tags (all of them when `tags` is empty) from each resource. */
  async delete(caller: Caller, ids: readonly string[], tags: readonly DeleteTag[]): Promise<void> {
    const resolved = await this.resolve(caller, ids);
    for (const [id, kind] of resolved) {
      await kind.updateTags(caller, id, (current) =>
        tags.length === 0 ? [] : removeTags(current, tags),
      );
    }
  }

  /** Every tag of the caller's resources, ordered by resource id then key. */
  async describe(caller: Caller): Promise<TagDescription[]> {
    const out: TagDescription[] = [];
    for (const kind of this.kinds) {
      for (const r of await kind.list(caller)) {
        for (const t of r.tags)
          out.push({
            resourceId: r.id,
            resourceType: kind.resourceType,
            key: t.key,
            value: t.value,
          });
      }
    }
    return out.sort((a, b) =>
      a.resourceId === b.resourceId ? cmp(a.key, b.key) : cmp(a.resourceId, b.resourceId),
    );
  }

  private async resolve(
    caller: Caller,
    ids: readonly string[],
  ): Promise<Map<string, TaggableKind>> {
    const out = new Map<string, TaggableKind>();
    for (const id of ids) {
      const kind = this.kindOf(id);
      if (!(await kind.exists(caller, id))) throw kind.notFound(id);
      out.set(id, kind);
    }
    return out;
  }
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
