export { diffManifests, type ManifestDiff } from './diff.js';
export { type ExportResult, exportDirectory } from './export-dir.js';
export { exportTarball } from './export-tar.js';
export {
  hashToken,
  ImageServer,
  loadTokens,
  type Scope,
  type ServerOptions,
  type TokenEntry,
} from './image-server.js';
export { type IngestStats, ingestDirectory } from './ingest-dir.js';
export { ingestImage } from './ingest-image.js';
export { ingestTarball, looksLikeTarball, memberPath } from './ingest-tar.js';
export { localBackend } from './local-backend.js';
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
export { RemoteStore } from './remote-store.js';
export { type ReplicateOptions, type ReplicateResult, replicate } from './replicate.js';
export type { MultipartSettings } from './s3-multipart.js';
export { S3Store, type S3StoreOptions } from './s3-store.js';
export type { StoreBackend } from './store-backend.js';
export { BackendReader, type ObjectReader, type StoreReader } from './store-reader.js';
