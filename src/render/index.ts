export { type BootFiles, compareVersions, findBootFiles } from './boot-files.js';
export { checkExt4Map, type Ext4Map } from './ext4/ext4-map.js';
export { type Ext4Plan, planExt4 } from './ext4/plan-ext4.js';
export {
  type Firmware,
  type RenderDiskOptions,
  type RenderDiskResult,
  renderDisk,
} from './render-disk.js';
export {
  formatUuid,
  mapPathOf,
  type RenderFsOptions,
  type RenderFsResult,
  renderFilesystem,
} from './render-fs.js';
export { DIFF_CHUNK, writeFsImage } from './write-fs-image.js';
