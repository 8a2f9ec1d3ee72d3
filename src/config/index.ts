export type { CredentialsConfig } from './credentials-config.js';
export { type EncryptionConfig, kmsKeyFor } from './encryption-config.js';
export {
  type FerryConfig,
  loadConfig,
  MAX_STREAMS,
  MAX_TARGETS,
  parseConfig,
  STATE_DIR,
} from './ferry-config.js';
export type { OpenStackTargetConfig } from './openstack-target-config.js';
export {
  NAME_PATTERN,
  type StreamBoot,
  type StreamConfig,
  type StreamFirmware,
  type StreamFs,
  type StreamLayout,
} from './stream-config.js';
export { MAX_TAG_KEY, MAX_TAG_VALUE, MAX_USER_TAGS } from './tags-config.js';
export {
  type AwsMethod,
  type AwsTargetConfig,
  MAX_REGIONS,
  type TargetConfig,
} from './target-config.js';
