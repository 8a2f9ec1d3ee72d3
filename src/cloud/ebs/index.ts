export type { BlockDifference, BlockMap } from './block-map.js';
export { differences, linearChecksum } from './block-map.js';
export { BlockStore, blockDigest } from './block-store.js';
export {
  EBS_EXCEPTIONS,
  EbsError,
  type EbsExceptionName,
  type EbsReason,
  isEbsError,
} from './ebs-error.js';
export { ebsService } from './ebs-service.js';
export {
  type ChangedBlock,
  type CompleteSnapshotInput,
  type EbsContext,
  EbsEngine,
  type EbsEngineOptions,
  type GetSnapshotBlockInput,
  type InUseGuard,
  type ListChangedBlocksInput,
  type ListedBlocks,
  type ListSnapshotBlocksInput,
  type PutSnapshotBlockInput,
  type SnapshotBlock,
} from './engine.js';
export * from './limits.js';
export type { EbsOperation, RateLimit, RateLimits } from './rate-limiter.js';
export type {
  SnapshotInfo,
  SnapshotRecord,
  SnapshotStatus,
  SnapshotTag,
} from './snapshot-record.js';
export type { StartSnapshotInput } from './validate.js';
