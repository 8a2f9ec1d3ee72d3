export { CONSOLE_MAX_BYTES } from './console-log.js';
export { instanceActions } from './ec2-actions.js';
export { detectHostTools, type HostTools } from './host-tools.js';
export { type BlockReader, type CacheEntry, ImageCache } from './image-cache.js';
export type {
  InstanceContext,
  InstanceRecord,
  InstanceStateName,
  StateReason,
} from './instance-record.js';
export { INSTANCE_TYPES, type InstanceTypeInfo } from './instance-types.js';
export {
  type ImageForLaunch,
  type ImageForLaunchFn,
  Instances,
  type InstancesOptions,
} from './instances.js';
export { qemuArgs } from './qemu-vm.js';
