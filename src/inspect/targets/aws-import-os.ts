/**
 * The Linux distributions and default kernels AWS VM Import accepts
 * (VM Import/Export prerequisites page, 2025). AWS compares the `uname -r`
 * prefix of the default kernel; anything else gets "Unsupported kernel version".
 */
interface OsRow {
  /** os-release IDs that mean this OS. */
  readonly ids: readonly string[];
  readonly name: string;
  /** [version prefix, kernel prefixes]; a version "*" row applies to every version. */
  readonly versions: ReadonlyArray<readonly [string, readonly string[]]>;
}

const TABLE: readonly OsRow[] = [
  {
    ids: ['amzn'],
    name: 'Amazon Linux',
    versions: [
      ['2023', ['6.1']],
      ['2', ['4.14', '4.19', '5.4', '5.10']],
    ],
  },
  {
    ids: ['centos'],
    name: 'CentOS',
    versions: [
      ['5', ['2.6.18']],
      ['6', ['2.6.32']],
      ['7', ['3.10.0']],
      ['8', ['4.18.0']],
      ['9', ['5.14.0']],
    ],
  },
  {
    ids: ['debian'],
    name: 'Debian',
    versions: [
      ['6.0', ['2.6.32']],
      ['7', ['3.2.0']],
      ['10', ['4.19.0']],
      ['11', ['5.10.0']],
      ['12', ['6.1.0']],
    ],
  },
  {
    ids: ['fedora'],
    name: 'Fedora',
    versions: [
      ['18', ['3.2.5']],
      ['19', ['3.9.5']],
      ['20', ['3.11.10']],
      ['37', ['6.0.7']],
      ['38', ['6.2.9']],
      ['39', ['6.5.6']],
    ],
  },
  {
    ids: ['ol'],
    name: 'Oracle Linux',
    versions: [
      ['5', ['2.6.18']],
      ['6', ['2.6.32', '2.6.39', '3.8.13', '4.1.12']],
      ['7', ['3.10.0', '3.8.13', '4.1.12', '4.14.35', '5.4.17']],
      ['8', ['4.18.0', '5.15.0']],
      ['9', ['5.14.0', '5.15.0', '6.12.0']],
    ],
  },
  {
    ids: ['rhel'],
    name: 'Red Hat Enterprise Linux',
    versions: [
      ['5', ['2.6.18']],
      ['6', ['2.6.32']],
      ['7', ['3.10.0']],
      ['8', ['4.18.0']],
      ['9', ['5.14.0']],
    ],
  },
  { ids: ['rocky'], name: 'Rocky Linux', versions: [['9', ['5.14.0']]] },
  {
    ids: ['sles', 'sled', 'opensuse-leap'],
    name: 'SUSE Linux Enterprise Server',
    versions: [
      ['11', ['2.6.32', '3.0']],
      ['12', ['3.12', '4.4', '4.12']],
      ['15', ['4.12', '5.3', '5.14', '6.4']],
    ],
  },
  {
    ids: ['ubuntu'],
    name: 'Ubuntu',
    versions: [
      ['12.04', ['3.2.0']],
      ['12.10', ['3.5.0']],
      ['13.04', ['3.8.0']],
      ['13.10', ['3.11']],
      ['14.04', ['3.13.0', '3.16.0', '3.19.0']],
      ['14.10', ['3.16']],
      ['15.04', ['3.19.0']],
      ['16.04', ['4.2.0', '4.4.0', '4.8.0', '4.10.0', '4.15.0']],
      ['16.10', ['4.8.0']],
      ['17.04', ['4.10.0']],
      ['18.04', ['4.15.0', '5.4.0']],
      ['20.04', ['5.4.0']],
      ['22.04', ['5.15.0']],
      ['23.04', ['5.15.0']],
      ['24.04', ['6.8.0', '6.11.0']],
    ],
  },
];

export type AwsOsSupport =
  | { readonly status: 'supported'; readonly name: string }
  | { readonly status: 'unknown-os' }
  | { readonly status: 'unsupported-version'; readonly name: string }
  | {
      readonly status: 'unsupported-kernel';
      readonly name: string;
      readonly expected: readonly string[];
    };

function versionMatches(version: string, prefix: string): boolean {
  return version === prefix || version.startsWith(`${prefix}.`);
}

function kernelMatches(release: string, prefix: string): boolean {
  return release === prefix || release.startsWith(`${prefix}.`) || release.startsWith(`${prefix}-`);
}

/** Whether AWS VM Import accepts this distribution, version and default kernel release. */
export function awsImportSupport(
  distro: string,
  version: string | null,
  kernelRelease: string | null,
): AwsOsSupport {
  const row = TABLE.find((r) => r.ids.includes(distro));
  if (row === undefined) return { status: 'unknown-os' };
  const entry =
    version === null ? undefined : row.versions.find(([v]) => versionMatches(version, v));
  if (entry === undefined) return { status: 'unsupported-version', name: row.name };
  if (kernelRelease === null || !entry[1].some((k) => kernelMatches(kernelRelease, k))) {
    return { status: 'unsupported-kernel', name: row.name, expected: entry[1] };
  }
  return { status: 'supported', name: row.name };
}
