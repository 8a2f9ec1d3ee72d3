export { DEFAULT_BOOT_PATTERN, DEFAULT_BOOT_TIMEOUT_MS } from './boot-check.js';
export type {
  BootOptions,
  ImportContext,
  ImportDependencies,
  ObjectFile,
  ObjectFileLookup,
  RegisterImage,
  RegisterImageInput,
} from './dependencies.js';
export { vmImportActions } from './import-actions.js';
export { IMAGE_PROGRESS, IMAGE_STEPS, SNAPSHOT_PROGRESS, SNAPSHOT_STEPS } from './states.js';
export type { ImportTaskRecord, TimelineEntry } from './task-record.js';
export { MAX_ACTIVE_TASKS, VmImport, type VmImportOptions } from './vm-import.js';
