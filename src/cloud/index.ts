export {
  type AccessKey,
  type AccountConfig,
  Accounts,
  type CloudConfig,
  CONFIG_FILE,
  DEFAULT_ACCESS_KEY,
  DEFAULT_ACCOUNT,
  DEFAULT_SECRET,
  loadCloudConfig,
  parseCloudConfig,
  type RoleConfig,
} from './accounts.js';
export { AwsError, encodeAwsError, isAwsError, type WireProtocol } from './aws-error.js';
export { defaultCloudDir, resetCloud, stateDir } from './data-dir.js';
export {
  type BlockDeviceMappingInput,
  type BundleManifest,
  type Caller as Ec2Caller,
  type CopyImageInput,
  type EbsInput,
  Ec2Cloud,
  type Ec2CloudOptions,
  type ImageBlockDevice,
  type ImageRecord,
  Images,
  type ImportRegistration,
  importRegistrar,
  type ManifestReader,
  parseManifest,
  type RegisterImageInput,
  Snapshots,
  type Tag as Ec2Tag,
  type TagDescription,
  type TaggableKind,
  TagRegistry,
} from './ec2/index.js';
export { type Ec2Action, type Ec2Actions, ec2Service } from './ec2.js';
export { EC2_BASE_ACTIONS } from './ec2-regions.js';
export {
  CloudEndpoint,
  type CloudEndpointOptions,
  DEFAULT_CLOUD_PORT,
  isLoopback,
} from './endpoint.js';
export {
  type ImageForLaunch,
  type ImageForLaunchFn,
  Instances,
  type InstancesOptions,
} from './instances/index.js';
export { canUse, EBS_DEFAULT_ALIAS, type KmsAlias, type KmsKey, KmsKeys } from './kms-keys.js';
export type { CloudPayload } from './payload.js';
export {
  ec2Response,
  filterMatches,
  queryFilters,
  queryList,
  queryParams,
  queryResponse,
} from './query-protocol.js';
export { isRegion, REGIONS, type RegionInfo } from './regions.js';
export { type S3ObjectFile, S3Storage } from './s3/index.js';
export { CloudServer, type CloudService, type SigningIdentity } from './server.js';
export type { CloudRequest, CloudResponse, ServiceHandler } from './service.js';
export { GLOBAL_REGION, StateStore } from './state-store.js';
