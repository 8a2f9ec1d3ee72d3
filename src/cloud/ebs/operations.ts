import type { RequestBody } from '../request-body.js';

/** The inputs and outputs of the engine's EBS direct API operations. */

export interface PutSnapshotBlockInput {
  readonly snapshotId: string;
  readonly blockIndex: number;
  /**
   * The block: bytes, or a request's body as received (its SHA-256 is the
   * server's own, computed on first use, never a value the client sent).
   */
  readonly data: Buffer | RequestBody;
  readonly dataLength: number;
  readonly checksum: string;
  readonly checksumAlgorithm: string;
  readonly progress?: number | undefined;
}

export interface CompleteSnapshotInput {
  readonly snapshotId: string;
  readonly changedBlocksCount: number;
  readonly checksum?: string | undefined;
  readonly checksumAlgorithm?: string | undefined;
  readonly checksumAggregationMethod?: string | undefined;
}

export interface ListSnapshotBlocksInput {
  readonly snapshotId: string;
  readonly maxResults?: number | undefined;
  readonly nextToken?: string | undefined;
  readonly startingBlockIndex?: number | undefined;
}

export interface ListChangedBlocksInput {
  readonly firstSnapshotId?: string | undefined;
  readonly secondSnapshotId: string;
  readonly maxResults?: number | undefined;
  readonly nextToken?: string | undefined;
  readonly startingBlockIndex?: number | undefined;
}

export interface GetSnapshotBlockInput {
  readonly snapshotId: string;
  readonly blockIndex: number;
  readonly blockToken: string;
}

export interface ListedBlocks<T> {
  readonly blocks: T[];
  readonly expiryTime: Date;
  readonly volumeSize: number;
  readonly blockSize: number;
  readonly nextToken?: string;
}

export interface ChangedBlock {
  readonly blockIndex: number;
  readonly firstBlockToken?: string;
  readonly secondBlockToken?: string;
}

export interface SnapshotBlock {
  readonly data: Buffer;
  readonly dataLength: number;
  /** Base64 SHA-256 of the data. */
  readonly checksum: string;
  readonly checksumAlgorithm: 'SHA256';
}
