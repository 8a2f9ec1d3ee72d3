/**
 * The EC2 query actions over instances: RunInstances, DescribeInstances,
 * StartInstances, StopInstances, TerminateInstances, GetConsoleOutput.
 * Parameters are parsed and bounded here; the lifecycle is `Instances`'.
 */
import { AwsError } from '../aws-error.js';
import type { Ec2Action } from '../ec2.js';
import { filterMatches, queryBoolean, queryFilters, queryList } from '../query-protocol.js';
import { xmlElements } from '../xml.js';
import type { InstanceRecord, InstanceTag } from './instance-record.js';
import { STATE_CODES } from './instance-record.js';
import { DEFAULT_INSTANCE_TYPE } from './instance-types.js';
import { reservations, reservationXml, stateChangeXml } from './instance-xml.js';
import type { Instances } from './instances.js';

const MAX_IDS = 1000;
const MAX_FILTERS = 50;
const MAX_FILTER_VALUES = 200;
const MAX_TAGS = 50;
const MAX_USER_DATA = 16384;
/** RunInstances' MaxCount is capped (the per-account limit applies on top). */
const MAX_COUNT = 1000;

function invalid(message: string): AwsError {
  return new AwsError(400, 'InvalidParameterValue', message);
}

function required(params: URLSearchParams, name: string): string {
  const v = params.get(name);
  if (v === null || v === '')
    throw new AwsError(400, 'MissingParameter', `The request must contain the parameter ${name}`);
  return v;
}

function integer(
  params: URLSearchParams,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  if (!/^-?\d{1,10}$/.test(v))
    throw invalid(
      `Value (${v.slice(0, 32)}) for parameter ${name} is invalid. Expected: 'Integer'.`,
    );
  const n = Number(v);
  if (n < min || n > max)
    throw invalid(
      `Value (${n}) for parameter ${name} is invalid. Expected a value from ${min} to ${max}.`,
    );
  return n;
}

function instanceIds(params: URLSearchParams, name = 'InstanceId'): string[] {
  const ids = queryList(params, name);
  if (ids.length > MAX_IDS) throw invalid(`At most ${MAX_IDS} instance IDs can be given.`);
  return ids;
}

/** TagSpecification.N (ResourceType, Tag.M.Key/Value): the instance's tags. */
function instanceTags(params: URLSearchParams): InstanceTag[] {
  const specs = new Set<number>();
  for (const k of params.keys()) {
    const m = /^TagSpecification\.(\d{1,4})\./.exec(k);
    if (m !== null) specs.add(Number(m[1]));
  }
  if (specs.size > 10) throw invalid('At most 10 tag specifications can be given.');
  const tags: InstanceTag[] = [];
  for (const n of [...specs].sort((a, b) => a - b)) {
    const type = params.get(`TagSpecification.${n}.ResourceType`) ?? '';
    const keys = new Map<number, { key?: string; value?: string }>();
    for (const [k, v] of params) {
      const m = new RegExp(`^TagSpecification\\.${n}\\.Tag\\.(\\d{1,4})\\.(Key|Value)$`).exec(k);
      if (m === null) continue;
      const e = keys.get(Number(m[1])) ?? {};
      if (m[2] === 'Key') e.key = v;
      else e.value = v;
      keys.set(Number(m[1]), e);
    }
    if (!['instance', 'volume', 'network-interface'].includes(type))
      throw invalid(
        `'${type.slice(0, 64)}' is not a valid taggable resource type for this operation.`,
      );
    // Volume and interface tags are accepted; there are no such resources here to carry them.
    if (type !== 'instance') continue;
    for (const [, e] of [...keys].sort((a, b) => a[0] - b[0])) {
      const key = e.key ?? '';
      const value = e.value ?? '';
      if (key.length < 1 || key.length > 128)
        throw invalid('Tag keys must be 1 to 128 characters long.');
      if (value.length > 256) throw invalid('Tag values must be at most 256 characters long.');
      if (key.toLowerCase().startsWith('aws:'))
        throw invalid("Tag keys starting with 'aws:' are reserved for internal use");
      if (tags.some((t) => t.key === key)) throw invalid(`Duplicate tag key '${key}' specified.`);
      tags.push({ key, value });
    }
  }
  if (tags.length > MAX_TAGS)
    throw new AwsError(
      400,
      'TagLimitExceeded',
      `The maximum number of tags (${MAX_TAGS}) for a resource has been exceeded.`,
    );
  return tags;
}

function userData(params: URLSearchParams): string | null {
  const v = params.get('UserData');
  if (v === null || v === '') return null;
  if (v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v))
    throw new AwsError(400, 'InvalidUserData.Malformed', 'Invalid BASE64 encoding of user data.');
  if (Buffer.from(v, 'base64').length > MAX_USER_DATA)
    throw invalid(`User data is limited to ${MAX_USER_DATA} bytes`);
  return v;
}

const FILTERS: Readonly<Record<string, (r: InstanceRecord) => readonly string[]>> = {
  'instance-id': (r) => [r.instanceId],
  'instance-state-name': (r) => [r.state],
  'instance-state-code': (r) => [String(STATE_CODES[r.state])],
  'image-id': (r) => [r.imageId],
  'instance-type': (r) => [r.instanceType],
  'reservation-id': (r) => [r.reservationId],
  architecture: (r) => [r.architecture],
  'availability-zone': (r) => [r.availabilityZone],
  'client-token': (r) => (r.clientToken === null ? [] : [r.clientToken]),
  'owner-id': (r) => [r.ownerId],
  'root-device-name': (r) => [r.rootDeviceName],
  'boot-mode': (r) => [r.bootMode],
  'tag-key': (r) => r.tags.map((t) => t.key),
  'tag-value': (r) => r.tags.map((t) => t.value),
};

function filterOf(name: string): (r: InstanceRecord) => readonly string[] {
  if (name.startsWith('tag:') && name.length > 4) {
    const key = name.slice(4);
    return (r) => r.tags.filter((t) => t.key === key).map((t) => t.value);
  }
  const f = Object.hasOwn(FILTERS, name) ? FILTERS[name] : undefined;
  if (f === undefined) throw invalid(`The filter '${name.slice(0, 128)}' is invalid`);
  return f;
}

/** An opaque page token: where the last page ended in (launch time, id) order. */
function pageToken(r: InstanceRecord): string {
  return Buffer.from(`${r.launchTime}:${r.instanceId}`).toString('base64url');
}

function afterToken(token: string): (r: InstanceRecord) => boolean {
  const m = /^(\d{1,16}):(i-[0-9a-f]{8,17})$/.exec(
    token.length <= 128 ? Buffer.from(token, 'base64url').toString('latin1') : '',
  );
  if (m === null) throw invalid(`The token '${token.slice(0, 128)}' is invalid`);
  const time = Number(m[1]);
  const id = m[2]!;
  return (r) => r.launchTime > time || (r.launchTime === time && r.instanceId > id);
}

const order = (a: InstanceRecord, b: InstanceRecord) =>
  a.launchTime - b.launchTime || (a.instanceId < b.instanceId ? -1 : 1);

/** The instance actions, for the EC2 action table. */
export function instanceActions(instances: Instances): Record<string, Ec2Action> {
  const ctxOf = (request: { account: string; region: string }) => ({
    account: request.account,
    region: request.region,
  });
  return {
    RunInstances: async (request, params) => {
      const minCount = integer(params, 'MinCount', 1, MAX_COUNT);
      const maxCount = integer(params, 'MaxCount', 1, MAX_COUNT);
      if (minCount === undefined) required(params, 'MinCount');
      if (maxCount === undefined) required(params, 'MaxCount');
      if (minCount! > maxCount!)
        throw invalid(
          `Value (${minCount}) for parameter MinCount is invalid. It must be less than or equal to MaxCount (${maxCount}).`,
        );
      const token = params.get('ClientToken');
      if (token !== null && (token.length > 64 || !/^[\x20-\x7e]*$/.test(token)))
        throw invalid('The ClientToken must be at most 64 ASCII characters.');
      const behavior = params.get('InstanceInitiatedShutdownBehavior') ?? 'stop';
      if (behavior !== 'stop' && behavior !== 'terminate')
        throw invalid(
          `Value (${behavior.slice(0, 32)}) for parameter InstanceInitiatedShutdownBehavior is invalid. Expected: 'stop' or 'terminate'.`,
        );
      queryBoolean(params, 'DisableApiTermination');
      const records = await instances.run(ctxOf(request), {
        imageId: required(params, 'ImageId'),
        instanceType: params.get('InstanceType') ?? DEFAULT_INSTANCE_TYPE,
        minCount: minCount!,
        maxCount: maxCount!,
        clientToken: token === null || token === '' ? null : token,
        tags: instanceTags(params),
        userData: userData(params),
        shutdownBehavior: behavior,
      });
      return xmlElements(reservationXml(records));
    },

    DescribeInstances: async (request, params) => {
      const ids = instanceIds(params);
      const maxResults = integer(params, 'MaxResults', 5, 1000);
      if (maxResults !== undefined && ids.length > 0)
        throw new AwsError(
          400,
          'InvalidParameterCombination',
          'The parameter instancesSet cannot be used with the parameter maxResults',
        );
      const filters = queryFilters(params);
      if (filters.length > MAX_FILTERS)
        throw invalid(`At most ${MAX_FILTERS} filters can be given.`);
      const tests = filters.map((f) => {
        if (f.values.length > MAX_FILTER_VALUES)
          throw invalid(
            `The maximum number of filter values specified on a single call is ${MAX_FILTER_VALUES}`,
          );
        const values = filterOf(f.name);
        return (r: InstanceRecord) => values(r).some((v) => filterMatches(f.values, v));
      });
      const token = params.get('NextToken');
      const after = token === null || token === '' ? () => true : afterToken(token);
      const chosen = (await instances.describe(ctxOf(request), ids))
        .filter((r) => tests.every((t) => t(r)))
        .sort(order)
        .filter(after);
      const page = maxResults === undefined ? chosen : chosen.slice(0, maxResults);
      const more = page.length < chosen.length;
      return xmlElements({
        reservationSet: reservations(page).map(reservationXml),
        nextToken: more ? pageToken(page[page.length - 1]!) : undefined,
      });
    },

    StartInstances: async (request, params) => {
      const changes = await instances.start(ctxOf(request), nonEmpty(instanceIds(params)));
      return xmlElements({ instancesSet: changes.map(stateChangeXml) });
    },

    StopInstances: async (request, params) => {
      const force = queryBoolean(params, 'Force');
      if (queryBoolean(params, 'Hibernate'))
        throw new AwsError(
          400,
          'UnsupportedHibernationConfiguration',
          'The instance cannot be hibernated: hibernation is not enabled for it.',
        );
      const changes = await instances.stop(ctxOf(request), nonEmpty(instanceIds(params)), force);
      return xmlElements({ instancesSet: changes.map(stateChangeXml) });
    },

    TerminateInstances: async (request, params) => {
      const changes = await instances.terminate(ctxOf(request), nonEmpty(instanceIds(params)));
      return xmlElements({ instancesSet: changes.map(stateChangeXml) });
    },

    GetConsoleOutput: async (request, params) => {
      const id = required(params, 'InstanceId');
      queryBoolean(params, 'Latest');
      const { output, timestamp } = await instances.consoleOutput(ctxOf(request), id);
      return xmlElements({
        instanceId: id,
        timestamp: new Date(timestamp).toISOString(),
        output: output.length === 0 ? undefined : output.toString('base64'),
      });
    },
  };
}

function nonEmpty(ids: string[]): string[] {
  if (ids.length === 0)
    throw new AwsError(
      400,
      'MissingParameter',
      'The request must contain the parameter InstanceId',
    );
  return ids;
}
