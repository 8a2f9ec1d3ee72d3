export {
  FINDINGS,
  type Finding,
  type FindingCode,
  TARGETS,
  type Target,
  type Verdict,
} from './findings.js';
export type { FsDriver, FsType, NodeStat } from './fs/fs-driver.js';
export { FsTree } from './fs/fs-tree.js';
export {
  compareVersions,
  type InspectOptions,
  inspectImage,
  type LinuxTrees,
  openLinuxTrees,
} from './inspect.js';
export type {
  FilesystemReport,
  InspectReport,
  KernelReport,
  OsReport,
  PartitionReport,
} from './report.js';
export { ReadCounter, type Volume, volumeOf } from './volume.js';
