/**
 * Every error code ferry raises, with its meaning. docs/errors.md is checked
 * against this table by a test, so the two never drift apart.
 */
export const ERROR_CODES = {
  // Generic
  FERRY_USAGE: 'A command was called with missing or invalid arguments.',
  FERRY_ABORTED: 'The operation was cancelled through its AbortSignal.',
  FERRY_IO: 'The operating system refused a read or write (the cause holds the errno).',
  FERRY_NOT_FOUND: 'A named file or object does not exist.',
  FERRY_NOT_CAPABLE: 'A source or target was asked for something it does not declare it can do.',
  FERRY_CONFIG_INVALID:
    'ferry.yaml is unreadable or malformed: bad YAML, an unknown key or a value of the wrong type (the message names the line).',
  FERRY_DESTINATION_EXISTS: 'The output path exists and overwriting was not allowed.',
  FERRY_INTERNAL: 'An invariant inside ferry did not hold; this is a bug.',

  // Format detection and generic image structure
  FERRY_FORMAT_UNKNOWN: 'The named format is not one ferry knows.',
  FERRY_FORMAT_MISMATCH:
    'The declared format differs from the format detected from the bytes (format confusion).',
  FERRY_FORMAT_UNSUPPORTED:
    'The image uses a variant or feature of its format that ferry does not read or write.',
  FERRY_IMAGE_TRUNCATED: 'The image is shorter than its own metadata says it is.',
  FERRY_IMAGE_TOO_LARGE:
    'A size or offset in the image exceeds what ferry accepts (2^53 bytes, format limits).',
  FERRY_IMAGE_LIMIT: 'A table or count in the image exceeds a safety cap (see src/disk/limits.ts).',
  FERRY_IMAGE_CORRUPT:
    'A structure in the image is inconsistent (overlapping tables, bad alignment, out-of-range entries).',
  FERRY_READ_OUT_OF_RANGE: 'A read was asked for bytes beyond the virtual disk size.',

  // qcow2
  FERRY_QCOW2_BAD_HEADER:
    'The qcow2 header has an invalid magic, version, cluster size or header length.',
  FERRY_QCOW2_BACKING_FILE:
    'The qcow2 image names a backing file; ferry never opens files named by an image.',
  FERRY_QCOW2_DATA_FILE:
    'The qcow2 image uses an external data file; ferry never opens files named by an image.',
  FERRY_QCOW2_ENCRYPTED: 'The qcow2 image is encrypted (AES or LUKS).',
  FERRY_QCOW2_INCOMPATIBLE_FEATURE:
    'The qcow2 image sets an incompatible feature bit ferry does not know.',
  FERRY_QCOW2_BAD_TABLE:
    'A qcow2 L1, L2 or refcount table entry is unaligned, reserved bits set, or outside the file.',
  FERRY_QCOW2_BAD_COMPRESSED_CLUSTER:
    'A qcow2 compressed cluster does not inflate to exactly one cluster.',

  // VMDK
  FERRY_VMDK_BAD_HEADER:
    'The VMDK sparse header is invalid (magic, version, grain size, table sizes, newline check).',
  FERRY_VMDK_BAD_DESCRIPTOR:
    'The VMDK descriptor is malformed, too large, or has unexpected extents.',
  FERRY_VMDK_EXTENT_PATH:
    'A VMDK extent names a path outside the descriptor directory, or flat extents were not allowed.',
  FERRY_VMDK_UNSUPPORTED_TYPE:
    'The VMDK createType is not monolithicSparse, streamOptimized or an allowed monolithicFlat.',
  FERRY_VMDK_BAD_GRAIN:
    'A VMDK grain or grain marker is out of range or does not inflate to exactly one grain.',
  FERRY_VMDK_BAD_FOOTER:
    'A streamOptimized VMDK footer or end-of-stream marker is missing or inconsistent.',
  FERRY_VMDK_DIFFERENCING:
    'The VMDK is a differencing disk (parentCID set); ferry never opens its parent.',

  // VHD
  FERRY_VHD_BAD_FOOTER: 'The VHD footer cookie, version or disk type is invalid.',
  FERRY_VHD_BAD_CHECKSUM: 'A VHD footer or dynamic header checksum does not match.',
  FERRY_VHD_FOOTER_MISMATCH:
    'The two footer copies of a dynamic VHD differ (AWS: "Footers not identical").',
  FERRY_VHD_DIFFERENCING: 'The VHD is a differencing disk; ferry never opens its parent.',
  FERRY_VHD_BAD_HEADER: 'The VHD dynamic header or its BAT is invalid.',

  // VHDX
  FERRY_VHDX_BAD_HEADER:
    'The VHDX file identifier, headers or region tables are invalid or fail CRC-32C.',
  FERRY_VHDX_BAD_METADATA: 'The VHDX metadata region is invalid or lacks a required item.',
  FERRY_VHDX_LOG_REPLAY: 'The VHDX log is not empty and would have to be replayed.',
  FERRY_VHDX_DIFFERENCING:
    'The VHDX has a parent (differencing disk); ferry never opens its parent.',
  FERRY_VHDX_BAD_BAT: 'A VHDX BAT entry has an invalid state or points outside the file.',

  // VDI
  FERRY_VDI_BAD_HEADER: 'The VDI header is invalid (signature, version, sizes, offsets).',
  FERRY_VDI_DIFFERENCING: 'The VDI is a differencing image; ferry never opens its parent.',
  FERRY_VDI_BAD_BLOCK_MAP: 'A VDI block map entry is out of range or used twice.',

  // OVA / OVF
  FERRY_OVA_BAD_ARCHIVE: 'The OVA is not a valid ustar archive.',
  FERRY_OVA_UNSAFE_MEMBER:
    'An OVA member has an absolute or traversing path, or is a link or special file.',
  FERRY_OVA_OVF_NOT_FIRST: 'The first member of the OVA is not the .ovf descriptor.',
  FERRY_OVA_BAD_OVF: 'The OVF descriptor is malformed or references members that do not exist.',
  FERRY_OVA_CHUNKED_DISK: 'The OVA stores a disk in chunks, which ferry (and AWS) do not accept.',
  FERRY_OVA_MANIFEST_MISMATCH: 'A digest in the OVA manifest does not match its member.',

  // Inspection: partition tables and filesystems
  FERRY_PARTITION_TABLE:
    'A partition table is malformed (bad CRC, overlapping or out-of-range entries, a looping extended chain).',
  FERRY_FS_CORRUPT: 'A filesystem structure is inconsistent or points outside the volume.',
  FERRY_FS_LIMIT:
    'A filesystem walk hit a safety cap (directory size, extent count, file size read, depth).',
  FERRY_FS_SYMLINK_LOOP: 'Resolving a path inside the image followed too many symlinks.',
  FERRY_FS_NOT_FOUND: 'A path does not exist inside the image filesystem.',
  FERRY_FS_NOT_A_DIRECTORY: 'A path component inside the image filesystem is not a directory.',
  FERRY_FS_UNSUPPORTED:
    'The filesystem uses a feature ferry cannot read (it is named, not looked inside).',
  FERRY_HIVE_CORRUPT: 'A Windows registry hive is malformed or exceeds a safety cap.',

  // Image store
  FERRY_STORE_OBJECT_CORRUPT:
    'A stored object no longer hashes to its name (disk corruption or tampering); it is never served.',
  FERRY_STORE_MANIFEST_INVALID:
    'A manifest is malformed: an unsafe or duplicate path, an unknown type, a field out of range, or too many entries.',
  FERRY_STORE_NOT_FOUND: 'A stream, revision or object named does not exist in the store.',
  FERRY_STORE_AMBIGUOUS: 'A revision id prefix matches more than one revision of the stream.',
  FERRY_STORE_LOCKED:
    'Another writer holds the store lock and did not release it in time (or left it behind: see the hint).',
  FERRY_STORE_NAME_INVALID:
    'A stream name is not lowercase letters, digits, ".", "_", "-" and "/"-separated parts.',
  FERRY_STORE_SOURCE_UNSUPPORTED:
    'An ingest source holds something the store does not keep (a socket, or a file that changed while read).',
  FERRY_UNAUTHORIZED:
    'A server refused the request: no valid token, or a read-only token used to write (HTTP 401/403).',
  FERRY_TAR_BAD_ARCHIVE:
    'A tarball is malformed: a bad header checksum or number, a truncated member, an oversized metadata record, an unsupported member type.',
  FERRY_TAR_UNSAFE_PATH:
    'A tarball member names an absolute path, climbs out with "..", or hard-links to something that is not an earlier file.',
  FERRY_STORE_EXPORT_UNSAFE:
    'An export would write outside its destination or through a symlink, or the destination is not empty.',

  // Render
  FERRY_RENDER_INPUT:
    'A revision cannot be rendered as asked: an entry the filesystem cannot hold (a name too long, a bad ACL), or a --base image that is not a ferry render.',
  FERRY_RENDER_TOOL_MISSING:
    'A tool a render runs (grub-mkimage and GRUB boot images) is missing or failed; the hint names the package.',
  FERRY_RENDER_LIMIT:
    'A render exceeds a filesystem limit: too many inodes or extents, attributes larger than one block, a fixed size too small for the contents.',

  // Local cloud
  FERRY_CLOUD_CONFIG_INVALID:
    "The local cloud's config.json is malformed: not JSON, an unknown key, a bad account id, access key or role, a duplicate, or a trust naming an unknown account.",
  FERRY_CLOUD_UNSAFE_LISTEN:
    'ferry cloud serve was asked to listen beyond loopback while the default test/test credentials are enabled.',
  FERRY_CLOUD_STATE_CORRUPT:
    'A local cloud state document is not JSON (it was changed by hand; atomic writes never leave one half-written).',

  // Publish: runs
  FERRY_PUBLISH_LOCKED:
    'Another ferry publish holds the state directory lock; one publish at a time uses a state directory.',
  FERRY_JOURNAL_INVALID:
    'A publish journal (state/runs/RUN.jsonl) is too large or does not begin with its run; it was changed by hand.',

  // Compression
  FERRY_DECOMPRESS:
    'Compressed data is corrupt or inflates past its declared size (decompression bomb).',

  // Publish: verify, deregister, prune
  FERRY_PUBLISH_IMAGE_NOT_FOUND:
    'ferry verify found no image of the stream revision in a placement (by its ferry:stream and ferry:revision tags), or the image has no root snapshot.',
  FERRY_PUBLISH_DIGESTS_MISSING:
    "ferry verify has no block digests for the image's content hash in the state directory (state/digests/HASH.json), or the image has no content-hash tag.",

  // Publish: Glance
  FERRY_GLANCE_REQUEST:
    "Glance answered a request with an error status (details hold the method, path, HTTP status and Glance's message), or the connection failed before an answer (details hold errno instead of a status, and for a data send the bytes sent).",
  FERRY_GLANCE_TLS:
    "The image service's TLS certificate was refused (untrusted, expired, or for another name); not retried. Give the cloud's CA as cacert in clouds.yaml, or verify: false.",
  FERRY_GLANCE_UNAUTHORIZED:
    'Glance refused the token (401), also after a fresh one was fetched once.',
  FERRY_GLANCE_FORBIDDEN:
    'Glance refused the request by policy (403): for example making an image public as a member, or copy-image without admin.',
  FERRY_GLANCE_CONFLICT:
    'Glance refused the request for the state of the image (409): re-uploading to an active image, replacing or removing a missing property.',
  FERRY_GLANCE_RESPONSE:
    "Glance's answer is malformed or oversized: not JSON, over the size cap, a missing or mistyped field, a next link elsewhere, more pages than the cap.",
  FERRY_GLANCE_UNSUPPORTED:
    'The Glance server does not offer what was asked: an import method absent from /v2/info/import, a store absent from /v2/info/stores.',
  FERRY_GLANCE_UPLOAD_FAILED:
    'Sending image data to Glance failed (connection lost, server error) after its retries; the image was deleted, never left queued or uploading.',
  FERRY_GLANCE_HASH_MISMATCH:
    "The image's os_hash_value (sha512) or size in Glance differs from the local data, or the source changed while it was sent; the image was deleted.",
  FERRY_GLANCE_IMAGE_FAILED:
    'An image went to killed or deleted, or an import or copy failed (os_glance_failed_import), while ferry waited for it.',
  FERRY_GLANCE_TIMEOUT: 'An image did not reach the awaited status within its time limit.',

  // OpenStack: auth and clouds.yaml
  FERRY_OPENSTACK_CLOUD_NOT_FOUND:
    'No clouds.yaml was found where OpenStack clients look (or where OS_CLIENT_CONFIG_FILE points), no cloud was named (argument or OS_CLOUD), or the named cloud is not in the file.',
  FERRY_OPENSTACK_AUTH:
    'Keystone refused the credentials (401): a wrong password, application credential secret or an expired token; the message names the auth method, never the secret.',
  FERRY_OPENSTACK_NO_ENDPOINT:
    'The Keystone catalog has no image service endpoint for the region and interface asked for; the message lists what the catalog has.',
  FERRY_KEYSTONE_UNREACHABLE:
    'Keystone could not be reached (connection refused, DNS, TLS, timeout) after the retries.',
  FERRY_KEYSTONE_RESPONSE:
    'Keystone answered something ferry cannot use: an unexpected status, a body over the size cap, bad JSON, or a token or catalog of the wrong shape.',

  // Publish: config
  FERRY_AWS_CREDENTIALS:
    "A target's AWS credentials could not be obtained: an unknown profile, a role that could not be assumed (AccessDenied, a bad external id), or nothing found by the SDK's default chain.",

  // Publish: VM Import
  FERRY_UPLOAD_FAILED:
    'S3 refused or failed a request of a multipart upload (create, part, list, complete); the cause holds its error.',
  FERRY_UPLOAD_SOURCE_CHANGED:
    'The file being uploaded changed size or modification time while it was sent.',
  FERRY_IMPORT_REFUSED:
    'EC2 refused a VM Import request (ImportImage, ImportSnapshot, DescribeImport*Tasks, RegisterImage); the cause holds its error.',
  FERRY_IMPORT_FAILED:
    "An import task ended deleted: AWS's StatusMessage is in the message, what ferry inspect finds in the local image in the hint.",
  FERRY_IMPORT_STALLED:
    'An import task showed no new state, message or progress for the stall limit; ferry cancelled it.',
  FERRY_IMPORT_TIMEOUT: 'An import task did not finish within its time limit; ferry cancelled it.',

  // Publish: EBS direct
  FERRY_PUBLISH_MAP_INVALID:
    "A render's block map given to publish is malformed, has no chunk digests, or does not describe the image beside it.",
  FERRY_PUBLISH_DIGESTS_INVALID:
    'A saved block digests file is malformed, oversized, or no longer hashes to its content hash.',
  FERRY_AWS_REQUEST:
    'An AWS call failed after its retries (details name the operation and the AWS error code; the cause is the SDK error).',
  FERRY_EBS_SNAPSHOT_FAILED:
    'An EBS snapshot went to the error state, or did not complete in time, after its blocks were sent.',
  FERRY_EBS_SNAPSHOT_RESTART:
    'A checkpointed snapshot cannot be continued (it went to error or is gone): start again with a new client token and an empty checkpoint.',
  FERRY_EBS_INPUT:
    'An EBS upload was asked for something impossible: a volume over 64 TiB, a parent larger than the image, a KMS key with a parent.',
  FERRY_EBS_VERIFY_FAILED: 'A snapshot read back through EBS direct differs from its source.',
  FERRY_AMI_NAME_TAKEN:
    'The image name is already used, in the account and region, by an image that is not the one being registered.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
