/** EC2's snapshot actions over the Snapshots service. */
import type { Ec2Action } from '../ec2.js';
import { isRegion } from '../regions.js';
import { xmlElements } from '../xml.js';
import { invalidValue, missing, snapshotNotFound, userMalformed } from './errors.js';
import { matchesAll, readFilters } from './filters.js';
import { ACCOUNT_ID } from './ids.js';
import { paginate } from './paging.js';
import { permissionItems, readPermissionEdit } from './permissions.js';
import { QueryReader } from './query-reader.js';
import { NO_OUTPUT, snapshotXml, tagSet } from './render.js';
import { Snapshots, type VisibleSnapshot } from './snapshots.js';
import { cmp, readTagSpecifications } from './tags.js';

const FILTERS = [
  'snapshot-id',
  'status',
  'owner-id',
  'owner-alias',
  'encrypted',
  'description',
  'volume-size',
  'volume-id',
  'progress',
  'kms-key-id',
  'start-time',
  'storage-tier',
  'tag-key',
  'tag-value',
];

function filterValues(v: VisibleSnapshot, name: string): string[] | undefined {
  const s = v.info;
  switch (name) {
    case 'snapshot-id':
      return [s.snapshotId];
    case 'status':
      return [s.status];
    case 'owner-id':
      return [s.ownerId];
    case 'encrypted':
      return [String(s.encrypted)];
    case 'description':
      return [s.description ?? ''];
    case 'volume-size':
      return [String(s.volumeSize)];
    case 'volume-id':
      return ['vol-ffffffff'];
    case 'progress':
      return [`${s.progress}%`];
    case 'kms-key-id':
      return s.kmsKeyArn === null ? [] : [s.kmsKeyArn];
    case 'start-time':
      return [s.startTime.toISOString()];
    case 'storage-tier':
      return ['standard'];
    default:
      return undefined;
  }
}

function checkUser(u: string, extra: readonly string[]): void {
  if (!extra.includes(u) && !ACCOUNT_ID.test(u)) throw userMalformed(u);
}

export function snapshotActions(snapshots: Snapshots): Record<string, Ec2Action> {
  const describe: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const caller = { account: request.account, region: request.region };
    const ids = q.list('SnapshotId', 1000, 64);
    for (const id of ids) Snapshots.checkId(id);
    const owners = q.list('Owner', 100, 64);
    for (const o of owners) checkUser(o, ['self', 'amazon', 'aws-marketplace']);
    const restorable = q.list('RestorableBy', 100, 64);
    for (const r of restorable) checkUser(r, ['self', 'all']);
    const filters = readFilters(q, FILTERS);
    let list = await snapshots.visible(caller);
    if (ids.length > 0) {
      for (const id of ids)
        if (!list.some((v) => v.info.snapshotId === id)) throw snapshotNotFound(id);
      list = list.filter((v) => ids.includes(v.info.snapshotId));
    }
    if (owners.length > 0) {
      const wanted = owners.map((o) => (o === 'self' ? caller.account : o));
      list = list.filter((v) => wanted.includes(v.info.ownerId));
    }
    if (restorable.length > 0) {
      const wanted = restorable.map((r) => (r === 'self' ? caller.account : r));
      list = list.filter((v) =>
        wanted.some((u) =>
          u === 'all' ? v.share.public : v.info.ownerId === u || v.share.users.includes(u),
        ),
      );
    }
    list = list.filter((v) =>
      matchesAll(
        filters,
        (n) => filterValues(v, n),
        v.info.ownerId === caller.account ? v.info.tags : [],
      ),
    );
    list.sort((a, b) => cmp(a.info.snapshotId, b.info.snapshotId));
    const page = paginate(q, list, (v) => v.info.snapshotId, {
      min: 5,
      max: 1000,
      exclusive: ['SnapshotId'],
    });
    return xmlElements({
      snapshotSet: page.items.map((v) => snapshotXml(v.info, caller.account)),
      nextToken: page.nextToken,
    });
  };

  const remove: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    await snapshots.delete(request, q.required('SnapshotId', 64));
    return NO_OUTPUT;
  };

  const copy: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const sourceRegion = q.required('SourceRegion', 64);
    const sourceSnapshotId = q.required('SourceSnapshotId', 64);
    const destination = q.string('DestinationRegion', { max: 64 });
    if (destination !== undefined && destination !== request.region)
      throw invalidValue(
        `DestinationRegion ${destination} is not the region of the request (${request.region}): send the request to the destination region.`,
      );
    if (!isRegion(sourceRegion))
      throw invalidValue(`Value (${sourceRegion}) for parameter SourceRegion is invalid.`);
    q.string('PresignedUrl', { max: 16384 }); // Accepted and ignored: the endpoint trusts itself.
    const description = q.string('Description', { max: 255 });
    const encrypted = q.boolean('Encrypted');
    const kmsKeyId = q.string('KmsKeyId', { max: 2048 });
    const tags = readTagSpecifications(q, ['snapshot']).get('snapshot') ?? [];
    const info = await snapshots.copy(request, request.principal, {
      sourceRegion,
      sourceSnapshotId,
      tags,
      ...(description === undefined ? {} : { description }),
      ...(encrypted === undefined ? {} : { encrypted }),
      ...(kmsKeyId === undefined ? {} : { kmsKeyId }),
    });
    return xmlElements({
      snapshotId: info.snapshotId,
      ...(info.tags.length === 0 ? {} : { tagSet: tagSet(info.tags) }),
    });
  };

  const attributeName = (q: QueryReader, required: boolean): string | undefined => {
    const a = required ? q.required('Attribute', 64) : q.string('Attribute', { max: 64 });
    if (a !== undefined && a !== 'createVolumePermission' && a !== 'productCodes')
      throw invalidValue(`Value (${a}) for parameter attribute is invalid. Unknown attribute.`);
    return a;
  };

  const modify: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const id = q.required('SnapshotId', 64);
    const attribute = attributeName(q, false);
    if (attribute === 'productCodes')
      throw invalidValue('The productCodes attribute of a snapshot cannot be changed.');
    const edit = readPermissionEdit(q, 'CreateVolumePermission');
    if (edit === undefined) throw missing('createVolumePermission');
    await snapshots.modifyPermissions(request, id, edit);
    return NO_OUTPUT;
  };

  const describeAttribute: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const id = q.required('SnapshotId', 64);
    const attribute = attributeName(q, true);
    const share = await snapshots.permissions(request, id);
    return xmlElements({
      snapshotId: id,
      ...(attribute === 'createVolumePermission'
        ? { createVolumePermission: permissionItems(share.users, share.public) }
        : { productCodes: [] }),
    });
  };

  const reset: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const id = q.required('SnapshotId', 64);
    const attribute = attributeName(q, true);
    if (attribute !== 'createVolumePermission')
      throw invalidValue('Only the createVolumePermission attribute of a snapshot can be reset.');
    await snapshots.resetPermissions(request, id);
    return NO_OUTPUT;
  };

  return {
    DescribeSnapshots: describe,
    DeleteSnapshot: remove,
    CopySnapshot: copy,
    ModifySnapshotAttribute: modify,
    DescribeSnapshotAttribute: describeAttribute,
    ResetSnapshotAttribute: reset,
  };
}
