/** EC2 DescribeRegions over the regions list, with its filters and region names. */
import { AwsError } from './aws-error.js';
import type { Ec2Action } from './ec2.js';
import { filterMatches, queryBoolean, queryFilters, queryList } from './query-protocol.js';
import { REGIONS } from './regions.js';
import { xmlElements } from './xml.js';

export const describeRegions: Ec2Action = async (_request, params) => {
  queryBoolean(params, 'AllRegions');
  const names = queryList(params, 'RegionName');
  for (const n of names) {
    if (!REGIONS.some((r) => r.name === n))
      throw new AwsError(400, 'InvalidParameterValue', `Invalid region: ${n}`);
  }
  const rows = REGIONS.map((r) => ({
    'region-name': r.name,
    endpoint: `ec2.${r.name}.amazonaws.com`,
    'opt-in-status': r.optIn ? 'opted-in' : 'opt-in-not-required',
  }));
  const filters = queryFilters(params);
  for (const f of filters) {
    if (!['region-name', 'endpoint', 'opt-in-status'].includes(f.name))
      throw new AwsError(400, 'InvalidParameterValue', `The filter '${f.name}' is invalid`);
  }
  const chosen = rows.filter(
    (row) =>
      (names.length === 0 || names.includes(row['region-name'])) &&
      filters.every((f) => filterMatches(f.values, row[f.name as keyof typeof row])),
  );
  return xmlElements({
    regionInfo: chosen.map((row) => ({
      regionName: row['region-name'],
      regionEndpoint: row.endpoint,
      optInStatus: row['opt-in-status'],
    })),
  });
};

/** The EC2 actions this slice serves. */
export const EC2_BASE_ACTIONS = { DescribeRegions: describeRegions } as const;
