/**
 * Every inspection finding, with the targets it concerns and, for AWS, the
 * words AWS itself would use. Codes are stable; messages are for people.
 * Sources: AWS VM Import/Export user guide (prerequisites, limitations,
 * troubleshooting pages) and observed messages (see
 * shared/reference/formats-and-cloud-apis.md §1).
 */
export type Target = 'aws-import' | 'aws-ebs' | 'openstack' | 'local';
export const TARGETS: readonly Target[] = ['aws-import', 'aws-ebs', 'openstack', 'local'];

export type Severity = 'error' | 'warning' | 'info';

export interface FindingSpec {
  /** error: the target will refuse or not boot; warning: it may; info: worth knowing. */
  readonly severity: Severity;
  readonly targets: readonly Target[];
  /** What AWS says (VM Import) when it hits this, where known. */
  readonly cloudMessage?: string;
}

const ALL = TARGETS;

export const FINDINGS = {
  // Disk and format
  DISK_EMPTY: {
    severity: 'error',
    targets: ALL,
    cloudMessage: 'ClientError: No valid partitions. Not a valid volume.',
  },
  NO_PARTITIONS: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: No valid partitions. Not a valid volume.',
  },
  VMDK_NOT_STREAM_OPTIMIZED: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: Disk validation failed [Unsupported VMDK File Format]',
  },
  OVA_LAYOUT: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: Disk validation failed [Unsupported OVA format]',
  },
  FORMAT_NOT_IMPORTABLE: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage:
      'Error Code: InvalidParameter, Error Message: Message: Parameter disk-image-size=0 has an invalid format',
  },
  DISK_TOO_LARGE: { severity: 'error', targets: ['aws-import'] },
  DISK_OVER_8TIB: { severity: 'warning', targets: ['aws-import'] },
  PARTITION_TABLE_PROBLEM: { severity: 'warning', targets: ALL },
  GPT_BACKUP_PROBLEM: { severity: 'warning', targets: ALL },
  // OS
  OS_UNKNOWN: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: Unknown OS / Missing OS files.',
  },
  NO_OS: {
    severity: 'error',
    targets: ALL,
    cloudMessage: 'ClientError: Unknown OS / Missing OS files.',
  },
  MULTIPLE_OS: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: Unsupported configuration - Multiple directories found',
  },
  OS_ARCH_32BIT: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: Unsupported kernel version',
  },
  OS_ARCH_ARM64: { severity: 'error', targets: ['aws-import'] },
  ENCRYPTED_VOLUME: { severity: 'error', targets: ['aws-import'] },
  LVM_ROOT: { severity: 'info', targets: ['aws-import'] },
  FS_UNREADABLE: { severity: 'warning', targets: ALL },
  FS_UNSUPPORTED_BY_AWS: { severity: 'error', targets: ['aws-import'] },
  // Kernel and drivers
  NO_KERNEL: {
    severity: 'error',
    targets: ALL,
    cloudMessage: 'ClientError: Unknown OS / Missing OS files.',
  },
  KERNEL_UNSUPPORTED: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: Unsupported kernel version',
  },
  NO_INITRD: {
    severity: 'warning',
    targets: ALL,
    cloudMessage:
      "ClientError: We were unable to read your import's initramfs/initrd to determine what drivers your import requires to run in EC2.",
  },
  MISSING_NVME: { severity: 'error', targets: ['aws-ebs'] },
  MISSING_ENA: { severity: 'warning', targets: ['aws-ebs'] },
  MISSING_VIRTIO: { severity: 'error', targets: ['openstack', 'local'] },
  MISSING_XEN_BLKFRONT: { severity: 'info', targets: ['aws-ebs'] },
  // Boot
  NO_BOOTLOADER: { severity: 'error', targets: ['aws-import', 'aws-ebs', 'local'] },
  BOOTLOADER_UNSUPPORTED: { severity: 'error', targets: ['aws-import'] },
  MULTIPLE_GRUB_CONFIGS: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: Multiple different grub/menu.lst files found',
  },
  BLS_NO_DEFAULT: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: BLSC-style GRUB found, but unable to detect default kernel',
  },
  UEFI_NO_FALLBACK: { severity: 'error', targets: ['aws-import', 'aws-ebs'] },
  BOOT_CODE_MISSING: { severity: 'error', targets: ['aws-import', 'aws-ebs', 'local'] },
  // Configuration
  FSTAB_MISSING: {
    severity: 'error',
    targets: ['aws-import'],
    cloudMessage: 'ClientError: Invalid configuration - Could not read fstab',
  },
  FSTAB_DEVICE_NAMES: { severity: 'warning', targets: ['aws-ebs', 'openstack'] },
  FSTAB_UNRESOLVED: { severity: 'warning', targets: ALL },
  NO_CLOUD_INIT: { severity: 'warning', targets: ['aws-ebs', 'openstack'] },
  NO_SERIAL_CONSOLE: { severity: 'info', targets: ['aws-ebs', 'local'] },
  WINDOWS_UNSUPPORTED_VERSION: { severity: 'error', targets: ['aws-import'] },
  PARTITIONLESS_ROOT: { severity: 'info', targets: ['openstack'] },
} as const satisfies Record<string, FindingSpec>;

export type FindingCode = keyof typeof FINDINGS;

export interface Finding {
  readonly code: FindingCode;
  readonly severity: Severity;
  readonly targets: readonly Target[];
  readonly message: string;
  /** What the cloud would say, where known (AWS VM Import). */
  readonly cloudMessage: string | null;
}

/** Builds a finding from the catalog; `cloudMessage` may be specialised (e.g. with the kernel version). */
export function finding(code: FindingCode, message: string, cloudMessage?: string): Finding {
  const spec: FindingSpec = FINDINGS[code];
  return {
    code,
    severity: spec.severity,
    targets: spec.targets,
    message,
    cloudMessage: cloudMessage ?? spec.cloudMessage ?? null,
  };
}

export type Verdict = 'pass' | 'warn' | 'fail';

/** Verdict per target: fail on any error finding for it, warn on any warning, else pass. */
export function verdicts(
  findings: readonly Finding[],
  targets: readonly Target[] = TARGETS,
): Record<string, Verdict> {
  const out: Record<string, Verdict> = {};
  for (const t of targets) {
    const mine = findings.filter((f) => f.targets.includes(t));
    out[t] = mine.some((f) => f.severity === 'error')
      ? 'fail'
      : mine.some((f) => f.severity === 'warning')
        ? 'warn'
        : 'pass';
  }
  return out;
}
