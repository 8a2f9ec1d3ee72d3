export { bucketNameProblem, checkBucketName } from './bucket-name.js';
export {
  MAX_KEY_BYTES,
  MAX_SINGLE_UPLOAD_BYTES,
  MIN_PART_BYTES,
} from './limits.js';
export { S3Error } from './s3-error.js';
export { s3Service } from './s3-service.js';
export { type S3ObjectFile, S3Storage } from './storage.js';
