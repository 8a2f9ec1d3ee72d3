/**
 * The shared vocabulary of publishing: what is published (a BlockSource),
 * where (a Placement: one target's account in one region), and how a step
 * keeps its progress across a crash (a Checkpoint in the run's journal).
 * See docs/publish.md.
 */

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

/** Where one target's image goes: an account in a region. */
export interface Placement {
  /** The target's name in ferry.yaml. */
  readonly target: string;
  readonly region: string;
  /** `${target}/${region}`: journal and history key. */
  readonly key: string;
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
