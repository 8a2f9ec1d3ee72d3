/** S3's published limits, as the local endpoint enforces them. */

/** A key is at most 1024 bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;
/** User metadata (x-amz-meta-* names and values together) is at most 2 KiB. */
export const MAX_USER_METADATA_BYTES = 2048;
/** A single PutObject or UploadPart is at most 5 GiB. */
export const MAX_SINGLE_UPLOAD_BYTES = 5 * 1024 ** 3;
/** Every part but the last must be at least 5 MiB. */
export const MIN_PART_BYTES = 5 * 1024 ** 2;
export const MAX_PART_NUMBER = 10_000;
/** ListObjects, ListParts, ListMultipartUploads, DeleteObjects answer or take at most this many. */
export const MAX_LIST = 1000;
/** XML request bodies (DeleteObjects with 1000 long keys, CompleteMultipartUpload with 10000 parts). */
export const MAX_XML_BODY_BYTES = 4 * 1024 * 1024;
/** Buckets per account (S3's default quota is 10000; a local endpoint needs far fewer). */
export const MAX_BUCKETS_PER_ACCOUNT = 1000;
