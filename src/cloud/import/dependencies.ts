/**
 * What VM Import needs from the rest of the local cloud, as interfaces the
 * endpoint fills in: the S3 service gives the source object's file, the
 * image registry registers the AMI. Keeping them as plain functions lets the
 * import module work (and be tested) before those services exist.
 */

export interface ImportContext {
  readonly account: string;
  readonly region: string;
}

/** A stored S3 object's bytes as a local file the import may open read-only. */
export interface ObjectFile {
  readonly path: string;
  readonly size: number;
}

/** Finds an object of `account`'s view of S3 (undefined: no such bucket or key, or no access). */
export type ObjectFileLookup = (
  account: string,
  bucket: string,
  key: string,
) => Promise<ObjectFile | undefined>;

export interface RegisterImageInput {
  readonly name: string;
  readonly description?: string;
  readonly architecture: string;
  readonly bootMode?: 'legacy-bios' | 'uefi';
  readonly rootDeviceName: '/dev/sda1';
  readonly snapshotId: string;
  /** GiB. */
  readonly volumeSize: number;
  /**
   * The import task's id: a registry that remembers it can return the same
   * image when a restarted task registers again (a crash between
   * registration and the task's next state write).
   */
  readonly clientToken: string;
}

/** Registers an AMI whose root device is the given snapshot. */
export type RegisterImage = (
  ctx: ImportContext,
  input: RegisterImageInput,
) => Promise<{ readonly imageId: string }>;

/** How the booting step runs the converted disk under QEMU. */
export interface BootOptions {
  /** false skips booting even where QEMU is installed. Default true. */
  readonly enabled?: boolean;
  /** Default qemu-system-x86_64 (looked up on PATH). */
  readonly qemu?: string;
  /** How long the guest has to reach userspace. Default 10 minutes. */
  readonly timeoutMs?: number;
  /** What on the serial console means the guest reached userspace (see boot-check.ts). */
  readonly pattern?: RegExp;
  /** Guest memory in MiB. Default 512. */
  readonly memoryMiB?: number;
  /** OVMF firmware for UEFI images. */
  readonly ovmfCode?: string;
  readonly ovmfVars?: string;
}

export interface ImportDependencies {
  readonly objectFile: ObjectFileLookup;
  readonly registerImage: RegisterImage;
  readonly boot?: BootOptions;
  /** Tasks doing work at once, over all accounts (the rest wait as pending). Default 2. */
  readonly concurrency?: number;
  /**
   * Awaited at each step a task enters (the step's name) and once its
   * snapshot exists ('snapshot-started'): lets a caller hold a task at a
   * known point (tests cancel and restart there). A cancel or shutdown does
   * not wait for it.
   */
  readonly checkpoint?: (taskId: string, point: string) => Promise<void>;
}
