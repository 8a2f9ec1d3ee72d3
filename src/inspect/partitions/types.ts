/** The boot code in the first 440 bytes of the disk (see boot-code.ts). */
export type BootCode = 'grub2' | 'grub-legacy' | 'syslinux' | 'windows' | 'none' | 'unknown';

export type PartitionKind = 'primary' | 'extended' | 'logical' | 'gpt';

/**
 * A problem with a partition table that does not stop ferry from reading it,
 * but that a cloud importer, a firmware or a partitioning tool may reject or
 * "correct". Codes are stable; see PARTITION_FINDING_CODES.
 */
export interface PartitionFinding {
  readonly code: PartitionFindingCode;
  readonly message: string;
}

/**
 * Stable finding codes, with their meaning.
 *
 * Policy: a FerryError (FERRY_PARTITION_TABLE) is thrown only when the table
 * cannot be read safely or unambiguously: a looping or endless extended
 * chain, more than MAX_LOGICAL_PARTITIONS logical partitions, or a GPT whose
 * primary and backup copies are both unusable (bad CRC, out-of-range entry
 * array, absurd entry count or size). Everything else, which leaves every
 * byte that is read inside the disk and every loop bounded, is a finding:
 * what a cloud or a partitioning tool would reject or rewrite.
 */
export const PARTITION_FINDING_CODES = {
  MBR_BAD_BOOT_FLAG: 'An MBR entry has a boot indicator other than 0x00 or 0x80.',
  MBR_MULTIPLE_ACTIVE: 'More than one MBR primary partition is marked active (bootable).',
  MBR_MULTIPLE_EXTENDED: 'More than one extended partition; only the first one is followed.',
  MBR_EBR_OUTSIDE:
    'An extended boot record lies outside the disk or its extended partition; the chain stops there.',
  MBR_EBR_BAD_SIGNATURE:
    'An extended boot record lacks the 0x55AA signature; the chain stops there.',
  MBR_LOGICAL_OUTSIDE_EXTENDED: 'A logical partition extends beyond its extended partition.',
  MBR_STALE_GPT:
    'The disk has an MBR without a protective entry but also a GPT header; the MBR is used.',
  PARTITION_OUTSIDE_DISK:
    'A partition starts or ends beyond the end of the disk (a truncated image?).',
  PARTITIONS_OVERLAP: 'Two partitions overlap.',
  PARTITION_OVERLAPS_TABLE: 'A partition covers the sectors of the partition table itself.',
  GPT_NO_PROTECTIVE_MBR: 'The GPT has no protective MBR (no 0x55AA signature or no 0xEE entry).',
  GPT_HEADER_MISSING:
    'The MBR has a protective 0xEE entry but no GPT header exists; the MBR is read as it is.',
  GPT_HYBRID_MBR: 'The protective MBR also lists other partitions (hybrid MBR).',
  GPT_PMBR_SIZE_MISMATCH:
    'The protective MBR entry does not cover the whole disk (the image was grown?).',
  GPT_PRIMARY_CORRUPT:
    'The primary GPT header or entry array is unusable; the backup copy is used.',
  GPT_BACKUP_MISSING: 'There is no backup GPT header at the end of the disk.',
  GPT_BACKUP_CORRUPT: 'The backup GPT header or entry array fails its CRC or bounds checks.',
  GPT_BACKUP_MISMATCH:
    'The backup GPT is not at the last sector, or disagrees with the primary (the image was grown without moving it?).',
  GPT_LAST_USABLE_BEYOND_DISK:
    "The GPT's last usable sector lies beyond the end of the disk (a truncated image?).",
  GPT_ENTRY_INVALID:
    'A GPT entry ends before it starts or lies at an unrepresentable offset; it is ignored.',
  GPT_PARTITION_OUTSIDE_USABLE: "A GPT partition lies outside the header's usable range.",
} as const;

export type PartitionFindingCode = keyof typeof PARTITION_FINDING_CODES;

export interface Partition {
  /** 1-based, as Linux names it: GPT entry slot + 1; MBR slot 1-4; logical partitions from 5. */
  readonly index: number;
  /** Byte offset and length on the disk. */
  readonly start: number;
  readonly size: number;
  /**
   * Short type: for MBR the hex id ('0x83', '0xef'); for GPT the type name
   * when ferry knows the GUID ('efi-system', 'linux-filesystem'), else the GUID.
   */
  readonly type: string;
  /** MBR: the hex id ('0x83'); GPT: the type GUID, lowercase. */
  readonly typeId: string;
  /** A name for the type ('linux', 'efi-system', 'bios-boot'...) or 'unknown'. */
  readonly typeName: string;
  /** MBR: boot indicator 0x80; GPT: attribute bit 2 (legacy BIOS bootable). */
  readonly bootable: boolean;
  /** GPT partition name (UTF-16LE in the entry); null for MBR. */
  readonly name: string | null;
  /** GPT unique partition GUID (lowercase); MBR: Linux's PARTUUID "<disk signature>-<index>". */
  readonly uuid: string | null;
  readonly kind: PartitionKind;
  /** GPT attribute bits as a hex string ('0x0000000000000004'); absent for MBR. */
  readonly attributes?: string;
}

export interface PartitionTable {
  readonly type: 'mbr' | 'gpt' | 'none';
  readonly partitions: Partition[];
  readonly findings: PartitionFinding[];
  /** Logical sector size the table uses: 512, or 4096 for a 4Kn GPT. */
  readonly sectorSize: number;
  /** GPT disk GUID (lowercase). */
  readonly diskGuid?: string;
  /** MBR disk signature ('0x1234abcd'), as sfdisk prints it. */
  readonly diskSignature?: string;
  /** GPT: the MBR holds a 0xEE entry and nothing else. */
  readonly protectiveMbr?: boolean;
  /** GPT: the MBR holds a 0xEE entry and other partitions too. */
  readonly hybridMbr?: boolean;
  /** GPT: the usable byte range [start, end) from the header used. */
  readonly usable?: { readonly start: number; readonly end: number };
  readonly bootCode: BootCode;
}
