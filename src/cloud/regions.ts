/**
 * The standard commercial AWS regions (partition "aws"). Every account of the
 * local cloud lives in all of them. Opt-in regions are reported as opted in,
 * the others as not needing it, as DescribeRegions does for an account that
 * enabled everything.
 */
export interface RegionInfo {
  readonly name: string;
  readonly optIn: boolean;
}

export const REGIONS: readonly RegionInfo[] = [
  { name: 'af-south-1', optIn: true },
  { name: 'ap-east-1', optIn: true },
  { name: 'ap-east-2', optIn: true },
  { name: 'ap-northeast-1', optIn: false },
  { name: 'ap-northeast-2', optIn: false },
  { name: 'ap-northeast-3', optIn: false },
  { name: 'ap-south-1', optIn: false },
  { name: 'ap-south-2', optIn: true },
  { name: 'ap-southeast-1', optIn: false },
  { name: 'ap-southeast-2', optIn: false },
  { name: 'ap-southeast-3', optIn: true },
  { name: 'ap-southeast-4', optIn: true },
  { name: 'ap-southeast-5', optIn: true },
  { name: 'ap-southeast-6', optIn: true },
  { name: 'ap-southeast-7', optIn: true },
  { name: 'ca-central-1', optIn: false },
  { name: 'ca-west-1', optIn: true },
  { name: 'eu-central-1', optIn: false },
  { name: 'eu-central-2', optIn: true },
  { name: 'eu-north-1', optIn: false },
  { name: 'eu-south-1', optIn: true },
  { name: 'eu-south-2', optIn: true },
  { name: 'eu-west-1', optIn: false },
  { name: 'eu-west-2', optIn: false },
  { name: 'eu-west-3', optIn: false },
  { name: 'il-central-1', optIn: true },
  { name: 'me-central-1', optIn: true },
  { name: 'me-south-1', optIn: true },
  { name: 'mx-central-1', optIn: true },
  { name: 'sa-east-1', optIn: false },
  { name: 'us-east-1', optIn: false },
  { name: 'us-east-2', optIn: false },
  { name: 'us-west-1', optIn: false },
  { name: 'us-west-2', optIn: false },
];

const NAMES: ReadonlySet<string> = new Set(REGIONS.map((r) => r.name));

export function isRegion(name: string): boolean {
  return NAMES.has(name);
}
