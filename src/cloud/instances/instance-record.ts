/** What the local cloud keeps of one instance, in the account's instances.json document. */

export type InstanceStateName =
  | 'pending'
  | 'running'
  | 'shutting-down'
  | 'terminated'
  | 'stopping'
  | 'stopped';

/** EC2's state codes (the low byte of InstanceState.Code). */
export const STATE_CODES: Readonly<Record<InstanceStateName, number>> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface StateReason {
  readonly code: string;
  readonly message: string;
}

export interface InstanceTag {
  readonly key: string;
  readonly value: string;
}

export type BootMode = 'legacy-bios' | 'uefi';

export interface InstanceRecord {
  readonly instanceId: string;
  readonly reservationId: string;
  readonly ownerId: string;
  readonly region: string;
  readonly availabilityZone: string;
  readonly imageId: string;
  /** The account holding the root snapshot (the image's owner). */
  readonly snapshotOwner: string;
  readonly snapshotId: string;
  /** The root volume's size in GiB (at least the snapshot's). */
  readonly volumeSize: number;
  /** Reported in the root block device mapping; there is no EC2 volume behind it yet. */
  readonly rootVolumeId: string;
  readonly rootDeviceName: string;
  readonly instanceType: string;
  readonly architecture: string;
  readonly bootMode: BootMode;
  readonly state: InstanceStateName;
  readonly stateReason: StateReason | null;
  /** StateTransitionReason: why and when the instance last stopped or terminated. */
  readonly transitionReason: string;
  /** Milliseconds since the epoch. */
  readonly launchTime: number;
  readonly amiLaunchIndex: number;
  readonly clientToken: string | null;
  /** SHA-256 of the RunInstances parameters, to tell a retry from a reuse of its token. */
  readonly requestFingerprint: string | null;
  readonly tags: readonly InstanceTag[];
  /** Base64, as the caller sent it. */
  readonly userData: string | null;
  readonly shutdownBehavior: 'stop' | 'terminate';
  /** When it became terminated (ms), to drop it from listings an hour later as EC2 does. */
  readonly terminatedAt: number | null;
  /** The QEMU process while one runs, so a restart after kill -9 can end an orphan. */
  readonly pid: number | null;
}

export interface InstancesDocument {
  readonly instances: InstanceRecord[];
}

export const emptyInstances = (): InstancesDocument => ({ instances: [] });

/** Where the instance is visible: its own account and region. */
export interface InstanceContext {
  readonly account: string;
  readonly region: string;
}
