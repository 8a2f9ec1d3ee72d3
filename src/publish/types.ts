/**
 * The shared vocabulary of publishing: what is published (a BlockSource),
 * where (a Placement: one target's account in one region), and how a step
 * keeps its progress across a crash (a Checkpoint in the run's journal).
 * See docs/publish.md.
 */

import { FerryError } from '../errors/index.js';
import type { GlanceOptions } from './openstack/glance-options.js';
import type { ImageSession } from './openstack/image-session.js';

/** EBS direct's block: 512 KiB. */
export const BLOCK_SIZE = 512 * 1024;

/** One 512 KiB block of the image to publish, from metadata only. */
export interface BlockInfo {
  readonly index: number;
  /**
   * data: bytes are stored (they may still be zeros);
   * zero: the format says zeros (a qcow2 zero cluster, a zero run a render knows);
   * hole: nothing stored at all.
   */
  readonly kind: 'data' | 'zero' | 'hole';
  /** Base64 SHA-256 of the block's 512 KiB when known without reading (a render's map). */
  readonly sha256?: string;
}

/** A disk image seen as EBS blocks. Reads are random access; memory is the caller's. */
export interface BlockSource {
  /** Virtual size in bytes (the volume is ceil(size / GiB) GiB). */
  readonly size: number;
  /** ceil(size / BLOCK_SIZE). */
  readonly blockCount: number;
  /** Content hash of the whole image (ferry's tag, idempotency): hex SHA-256 of the block digest list. */
  readonly contentHash: string;
  /** Every block in index order, metadata only. */
  blocks(signal?: AbortSignal): AsyncIterable<BlockInfo>;
  /** Reads block `index` into `into` (BLOCK_SIZE bytes; a short last block is zero-padded). */
  readBlock(index: number, into: Buffer, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Static AWS credentials, or what the SDK's provider functions return. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

export type CredentialProvider = () => Promise<AwsCredentials>;

/** What every placement has, whatever the cloud. */
interface PlacementCommon {
  /** The target's name in ferry.yaml. */
  readonly target: string;
  /** An AWS region, or an OpenStack region of the target's cloud. */
  readonly region: string;
  /** `${target}/${region}`: journal and history key. */
  readonly key: string;
}

/** Where one AWS target's image goes: an account in a region. */
export interface AwsPlacement extends PlacementCommon {
  readonly cloud: 'aws';
  /** An AWS-compatible endpoint (the local cloud), or undefined for AWS itself. */
  readonly endpoint?: string;
  readonly credentials: CredentialProvider;
  /** KMS key id/ARN/alias for this region; undefined with encrypted: the account's default EBS key. */
  readonly kmsKeyId?: string;
  readonly encrypted: boolean;
  /** Accounts given launch permission (and snapshot create-volume permission). */
  readonly shareWith: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
}

/** Where one OpenStack target's image goes: a region of its cloud's image service. */
export interface GlancePlacement extends PlacementCommon {
  readonly cloud: 'openstack';
  /** The session to this region's image service (authenticated once, shared by the run). */
  readonly session: () => Promise<ImageSession>;
  readonly glance: GlanceOptions;
}

export type Placement = AwsPlacement | GlancePlacement;

/**
 * A step's durable progress. `load` returns what the last `save` stored for
 * this step (after a crash too); `save` is durable when it resolves.
 */
export interface Checkpoint<T> {
  load(): Promise<T | undefined>;
  save(value: T): Promise<void>;
}

/** Events a publish emits; the CLI renders them (progress bars or JSON lines). */
export type PublishEvent =
  | {
      readonly type: 'step';
      readonly placement: string;
      readonly step: string;
      readonly state: 'started' | 'done' | 'skipped' | 'failed';
      readonly detail?: string;
    }
  | {
      readonly type: 'blocks';
      readonly placement: string;
      readonly sent: number;
      readonly skipped: number;
      readonly total: number;
      readonly bytes: number;
    }
  | {
      readonly type: 'import';
      readonly placement: string;
      readonly status: string;
      readonly progress: number | null;
      readonly message: string | null;
    }
  | { readonly type: 'throttled'; readonly placement: string; readonly concurrency: number };

/** The tags ferry puts on what it creates; how re-runs find their earlier work. */
export const TAG = {
  stream: 'ferry:stream',
  revision: 'ferry:revision',
  contentHash: 'ferry:content-hash',
  version: 'ferry:version',
  run: 'ferry:run',
} as const;

/** The placement as an AWS one; a runner for AWS given another cloud's is a bug. */
export function awsPlacement(placement: Placement): AwsPlacement {
  if (placement.cloud !== 'aws')
    throw new FerryError(
      'FERRY_INTERNAL',
      `Cannot use placement ${placement.key} with AWS: it is an ${placement.cloud} placement`,
    );
  return placement;
}

/** The placement as an OpenStack one. */
export function glancePlacement(placement: Placement): GlancePlacement {
  if (placement.cloud !== 'openstack')
    throw new FerryError(
      'FERRY_INTERNAL',
      `Cannot use placement ${placement.key} with Glance: it is an ${placement.cloud} placement`,
    );
  return placement;
}
