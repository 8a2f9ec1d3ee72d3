import type { FormatName } from '../disk/index.js';
import type { Finding, Target, Verdict } from './findings.js';
import type { FsType } from './fs/fs-driver.js';
import type { DriverPresence } from './kernel/kernels.js';

/** What `ferry inspect --output json` prints. Fields are stable; new ones may be added. */
export interface InspectReport {
  readonly image: string;
  readonly format: FormatName;
  readonly virtualSize: number;
  readonly partitionTable: {
    readonly type: 'mbr' | 'gpt' | 'none';
    readonly partitions: PartitionReport[];
  };
  readonly filesystems: FilesystemReport[];
  readonly os: OsReport | null;
  readonly kernels: KernelReport[];
  readonly bootloader: { readonly type: BootloaderType; readonly firmware: Array<'bios' | 'uefi'> };
  readonly fstab: Array<{ spec: string; mountPoint: string; type: string; resolved: boolean }>;
  readonly cloudInit: boolean;
  readonly serialConsole: boolean;
  readonly findings: Finding[];
  readonly verdicts: Partial<Record<Target, Verdict>>;
  /** Bytes of the virtual disk read, and wall time: inspection's own cost. */
  readonly bytesRead: number;
  readonly seconds: number;
}

export type BootloaderType = 'grub2' | 'grub-legacy' | 'extlinux' | 'syslinux' | 'windows' | 'none';

export interface PartitionReport {
  readonly index: number;
  readonly start: number;
  readonly size: number;
  readonly type: string;
  readonly bootable: boolean;
  readonly filesystem: FsType | null;
}

export interface FilesystemReport {
  /** Partition index, or null for a filesystem on the whole disk. */
  readonly partition: number | null;
  readonly type: FsType;
  readonly uuid: string | null;
  readonly label: string | null;
  readonly size: number | null;
  /** ferry can read files inside it. */
  readonly readable: boolean;
}

export interface OsReport {
  readonly type: 'linux' | 'windows';
  readonly distro: string | null;
  readonly version: string | null;
  readonly prettyName: string | null;
  /** The root filesystem: partition index (null for the whole disk). */
  readonly root: {
    readonly partition: number | null;
    readonly type: FsType;
    readonly uuid: string | null;
  };
  readonly arch: string | null;
  /** Windows: build and edition. */
  readonly build?: string | null;
  readonly edition?: string | null;
}

export interface KernelReport {
  readonly path: string;
  readonly version: string;
  readonly arch: string;
  readonly initrd: string | null;
  readonly drivers: DriverPresence;
  /** The kernel a plain boot would pick (the newest). */
  readonly default: boolean;
}
