export type { BlockDifference, BlockMap } from './block-map.js';
export { differences, linearChecksum } from './block-map.js';
export { blockReceiver } from './block-receiver.js';
export { BlockStore, blockDigest } from './block-store.js';
export {
  EBS_EXCEPTIONS,
  EbsError,
  type EbsExceptionName,
  type EbsReason,
  isEbsError,
} from './ebs-error.js';
export { ebsService } from './ebs-service.js';
export { EbsEngine, type EbsEngineOptions, type InUseGuard } from './engine.js';
export * from './limits.js';
export type {
  ChangedBlock,
  CompleteSnapshotInput,
  GetSnapshotBlockInput,
  ListChangedBlocksInput,
  ListedBlocks,
  ListSnapshotBlocksInput,
  PutSnapshotBlockInput,
  SnapshotBlock,
} from './operations.js';
export type { EbsOperation, RateLimit, RateLimits } from './rate-limiter.js';
export type { EbsContext } from './snapshot-area.js';
export type {
  SnapshotInfo,
  SnapshotRecord,
  SnapshotStatus,
  SnapshotTag,
} from './snapshot-record.js';
export type { StartSnapshotInput } from './validate.js';
