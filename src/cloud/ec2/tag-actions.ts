/** CreateTags, DeleteTags and DescribeTags over the tag registry. */
import type { Ec2Action } from '../ec2.js';
import { xmlElements } from '../xml.js';
import { missing } from './errors.js';
import { matchesAll, readFilters } from './filters.js';
import { paginate } from './paging.js';
import { QueryReader } from './query-reader.js';
import { NO_OUTPUT } from './render.js';
import { type DeleteTag, MAX_TAG_KEY, MAX_TAG_VALUE, readTags, type TagRegistry } from './tags.js';

const FILTERS = ['resource-id', 'resource-type', 'key', 'value'];

export function tagActions(tags: TagRegistry): Record<string, Ec2Action> {
  const create: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const ids = q.list('ResourceId', 1000, 128);
    if (ids.length === 0) throw missing('resourceIdSet');
    const list = readTags(q);
    if (list.length === 0) throw missing('tagSet');
    await tags.create(request, ids, list);
    return NO_OUTPUT;
  };

  const remove: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const ids = q.list('ResourceId', 1000, 128);
    if (ids.length === 0) throw missing('resourceIdSet');
    // A tag given with a value (even empty) is deleted only when its value matches.
    const list: DeleteTag[] = q.structs('Tag', 1000).map((t) => {
      const key = t.string('Key', { max: MAX_TAG_KEY * 4 }) ?? '';
      const value = t.string('Value', { max: MAX_TAG_VALUE * 4 });
      return value === undefined ? { key } : { key, value };
    });
    await tags.delete(request, ids, list);
    return NO_OUTPUT;
  };

  const describe: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const filters = readFilters(q, FILTERS);
    const all = (await tags.describe(request)).filter((t) =>
      matchesAll(
        filters,
        (n) =>
          n === 'resource-id'
            ? [t.resourceId]
            : n === 'resource-type'
              ? [t.resourceType]
              : n === 'key'
                ? [t.key]
                : n === 'value'
                  ? [t.value]
                  : undefined,
        [t],
      ),
    );
    const page = paginate(q, all, (t) => `${t.resourceId}\u0000${t.key}`, { min: 5, max: 1000 });
    return xmlElements({
      tagSet: page.items.map((t) => ({
        resourceId: t.resourceId,
        resourceType: t.resourceType,
        key: t.key,
        value: t.value,
      })),
      nextToken: page.nextToken,
    });
  };

  return { CreateTags: create, DeleteTags: remove, DescribeTags: describe };
}
