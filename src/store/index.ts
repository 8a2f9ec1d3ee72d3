export { diffManifests, type ManifestDiff } from './diff.js';
export { type ExportResult, exportDirectory } from './export-dir.js';
export { exportTarball } from './export-tar.js';
export { type IngestStats, ingestDirectory } from './ingest-dir.js';
export { ingestTarball, memberPath } from './ingest-tar.js';
export {
  checkStreamName,
  defaultStoreDir,
  type GcOptions,
  type GcResult,
  LocalStore,
  type RevisionRecord,
} from './local-store.js';
export {
  canonicalManifest,
  checkManifest,
  comparePaths,
  type EntryType,
  MANIFEST_LIMITS,
  type Manifest,
  type ManifestEntry,
  parseManifest,
  revisionId,
} from './manifest.js';
export { isObjectId, LocalObjectStore } from './object-store.js';
