export { type AwsClients, type AwsClientsOptions, awsClients } from './clients.js';
export {
  deleteSnapshot,
  type EbsCheckpoint,
  planBlock,
  type UploadSnapshotOptions,
  type UploadSnapshotResult,
  uploadSnapshot,
  waitCompleted,
} from './ebs-upload.js';
export { findParent, type ParentQuery, type ParentSnapshot } from './find-parent.js';
export { resolveKmsKey } from './kms-key.js';
export {
  deregisterImage,
  type FoundImage,
  findImage,
  type RegisterImageOptions,
  registerImage,
  shareImage,
  tagResources,
} from './register.js';
export { assertVerified, type VerifyOptions, type VerifyResult, verifySnapshot } from './verify.js';
