/**
 * The EC2 actions of VM Import, for the EC2 action table: ImportImage,
 * ImportSnapshot, DescribeImportImageTasks, DescribeImportSnapshotTasks,
 * CancelImportTask.
 */
import { AwsError } from '../aws-error.js';
import type { Ec2Action } from '../ec2.js';
import { filterMatches, type QueryFilter, queryList } from '../query-protocol.js';
import { xmlElements } from '../xml.js';
import { importImageRequest, importSnapshotRequest } from './params.js';
import { kindOfId, TASK_ID } from './task-id.js';
import type { ImportKind, ImportTaskRecord } from './task-record.js';
import { imageTaskXml, snapshotTaskXml } from './task-xml.js';
import type { VmImport } from './vm-import.js';

const MAX_IDS = 200;
const MAX_FILTERS = 50;

/**
 * These two actions' model names the list Filters without a locationName,
 * so the SDKs send Filters.N.Name and Filters.N.Value.M (not EC2's usual
 * Filter.N); both spellings are read.
 */
function filtersOf(params: URLSearchParams): QueryFilter[] {
  const out: QueryFilter[] = [];
  for (const prefix of ['Filter', 'Filters']) {
    for (let n = 1; ; n++) {
      const name = params.get(`${prefix}.${n}.Name`);
      if (name === null) break;
      out.push({ name, values: queryList(params, `${prefix}.${n}.Value`) });
      if (out.length > MAX_FILTERS)
        throw new AwsError(
          400,
          'InvalidParameterValue',
          `At most ${MAX_FILTERS} filters may be given.`,
        );
    }
  }
  return out;
}
const DEFAULT_PAGE = 1000;

function describe(vm: VmImport, kind: ImportKind): Ec2Action {
  return async (request, params) => {
    const ids = queryList(params, 'ImportTaskId');
    if (ids.length > MAX_IDS)
      throw new AwsError(
        400,
        'InvalidParameterValue',
        `At most ${MAX_IDS} ImportTaskId values may be given.`,
      );
    for (const id of ids)
      if (!TASK_ID.test(id) || kindOfId(id) !== kind)
        throw new AwsError(
          400,
          'InvalidConversionTaskId.Malformed',
          `The import task ID '${id.slice(0, 64)}' is malformed.`,
        );
    const filters = filtersOf(params);
    for (const f of filters)
      if (!(f.name === 'task-state' || f.name === 'tag-key' || f.name.startsWith('tag:')))
        throw new AwsError(
          400,
          'InvalidParameterValue',
          `The filter '${f.name.slice(0, 64)}' is invalid`,
        );
    const maxText = params.get('MaxResults');
    let max = DEFAULT_PAGE;
    if (maxText !== null) {
      max = Number(maxText);
      if (!/^\d{1,9}$/.test(maxText) || max < 1)
        throw new AwsError(
          400,
          'InvalidParameterValue',
          `Value (${maxText.slice(0, 32)}) for parameter MaxResults is invalid.`,
        );
      max = Math.min(max, DEFAULT_PAGE);
    }
    const all = await vm.tasks(request, kind);
    for (const id of ids)
      if (!all.some((t) => t.id === id))
        throw new AwsError(
          400,
          'InvalidConversionTaskId',
          `The import task ID '${id}' does not exist.`,
        );
    const chosen = all.filter(
      (t) =>
        (ids.length === 0 || ids.includes(t.id)) &&
        filters.every((f) => matches(t, f.name, f.values)),
    );
    const token = params.get('NextToken');
    let start = 0;
    if (token !== null) {
      // The token names the last task of the previous page.
      const last = /^[A-Za-z0-9_-]{1,64}$/.test(token)
        ? Buffer.from(token, 'base64url').toString('utf8')
        : '';
      const at = chosen.findIndex((t) => t.id === last);
      if (!TASK_ID.test(last) || at < 0)
        throw new AwsError(400, 'InvalidParameterValue', 'The NextToken value is invalid.');
      start = at + 1;
    }
    const page = chosen.slice(start, start + max);
    const more = start + max < chosen.length;
    const nextToken = more
      ? Buffer.from(page[page.length - 1]!.id).toString('base64url')
      : undefined;
    const render = kind === 'image' ? imageTaskXml : snapshotTaskXml;
    return xmlElements(
      kind === 'image'
        ? { importImageTaskSet: page.map(render), nextToken }
        : { importSnapshotTaskSet: page.map(render), nextToken },
    );
  };
}

function matches(t: ImportTaskRecord, name: string, values: readonly string[]): boolean {
  if (name === 'task-state') return filterMatches(values, t.status);
  if (name === 'tag-key') return t.tags.some((tag) => filterMatches(values, tag.key));
  const key = name.slice('tag:'.length);
  return t.tags.some((tag) => tag.key === key && filterMatches(values, tag.value));
}

/** The five actions over one VmImport, to merge into the EC2 action table. */
export function vmImportActions(vm: VmImport): Record<string, Ec2Action> {
  return {
    ImportImage: async (request, params) => {
      const task = await vm.create(request, importImageRequest(params));
      return xmlElements(imageTaskXml(task));
    },
    ImportSnapshot: async (request, params) => {
      const task = await vm.create(request, importSnapshotRequest(params));
      return xmlElements(snapshotTaskXml(task));
    },
    DescribeImportImageTasks: describe(vm, 'image'),
    DescribeImportSnapshotTasks: describe(vm, 'snapshot'),
    CancelImportTask: async (request, params) => {
      const id = params.get('ImportTaskId');
      if (id === null)
        throw new AwsError(
          400,
          'MissingParameter',
          'The request must contain the parameter ImportTaskId.',
        );
      if (!TASK_ID.test(id))
        throw new AwsError(
          400,
          'InvalidConversionTaskId.Malformed',
          `The import task ID '${id.slice(0, 64)}' is malformed.`,
        );
      const reason = params.get('CancelReason');
      if (reason !== null && reason.length > 255)
        throw new AwsError(
          400,
          'InvalidParameterValue',
          'CancelReason is longer than 255 characters.',
        );
      const kind = kindOfId(id)!;
      if (!(await vm.tasks(request, kind)).some((t) => t.id === id))
        throw new AwsError(
          400,
          'InvalidConversionTaskId',
          `The import task ID '${id}' does not exist.`,
        );
      const r = await vm.cancel(request, id, reason);
      return xmlElements({ importTaskId: id, previousState: r.previous, state: r.state });
    },
  };
}
