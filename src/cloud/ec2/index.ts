export { Ec2Cloud, type Ec2CloudOptions } from './ec2-cloud.js';
export { wildcardMatch } from './filters.js';
export { isId, newId } from './ids.js';
export type { BlockDeviceMappingInput, EbsInput, RegisterImageInput } from './image-input.js';
export type {
  Architecture,
  BootMode,
  ImageBlockDevice,
  ImageRecord,
  ImageState,
  VolumeType,
} from './image-record.js';
export {
  type CopyImageInput,
  type DeregisterResult,
  Images,
  type LaunchPermissionChange,
  type ManifestReader,
} from './images.js';
export { type ImportRegistration, importRegistrar } from './import-registrar.js';
export {
  type BundleManifest,
  type BundlePart,
  MAX_MANIFEST_BYTES,
  parseManifest,
} from './manifest.js';
export { type CopySnapshotInput, Snapshots, type VisibleSnapshot } from './snapshots.js';
export {
  type Caller,
  checkTag,
  MAX_TAG_KEY,
  MAX_TAG_VALUE,
  MAX_TAGS,
  type Tag,
  type TagDescription,
  type TaggableKind,
  TagRegistry,
} from './tags.js';
