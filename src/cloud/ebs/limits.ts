/** The fixed sizes and bounds of the EBS direct API (from the ebs-2019-11-02 model and AWS's docs). */

/** Every block is 512 KiB; PutSnapshotBlock's DataLength may only be this. */
export const BLOCK_SIZE = 524288;
/** Blocks per GiB of volume. */
export const BLOCKS_PER_GIB = 2048;
/** StartSnapshot's VolumeSize, in GiB: 1 to 64 TiB. */
export const MAX_VOLUME_GIB = 65536;
/** StartSnapshot's Timeout, in minutes: 10 to 4320, 60 when omitted. */
export const MIN_TIMEOUT_MINUTES = 10;
export const MAX_TIMEOUT_MINUTES = 4320;
export const DEFAULT_TIMEOUT_MINUTES = 60;
/** MaxResults of the two list operations: 100 to 10000. */
export const MIN_MAX_RESULTS = 100;
export const MAX_MAX_RESULTS = 10000;
/** Tags per snapshot, and the lengths of a tag's key and value. */
export const MAX_TAGS = 50;
export const MAX_TAG_KEY = 127;
export const MAX_TAG_VALUE = 255;
export const MAX_DESCRIPTION = 255;
export const MAX_CLIENT_TOKEN = 255;
/** AWS's default quota of pending snapshots per account and region. */
export const DEFAULT_PENDING_SNAPSHOT_LIMIT = 100;
/** How long block tokens stay valid (ExpiryTime of the list operations). */
export const DEFAULT_BLOCK_TOKEN_TTL_SECONDS = 7 * 24 * 3600;
/**
 * The largest request body the EBS direct API takes: one block
 * (PutSnapshotBlock); StartSnapshot's JSON, with 50 tags, is far smaller.
 * The endpoint caps bodies of the ebs service at this.
 */
export const MAX_REQUEST_BODY = BLOCK_SIZE;
