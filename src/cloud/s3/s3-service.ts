/**
 * S3's REST-XML bindings (s3-2006-03-01), path style: the first path
 * segment is the bucket, the rest the key. The method and the query's
 * sub-resources pick the operation:
 *
 *   GET /                              ListBuckets
 *   PUT|DELETE|HEAD /b                 CreateBucket, DeleteBucket, HeadBucket
 *   GET /b?location | ?uploads | ?list-type=2 | (none)
 *                                      GetBucketLocation, ListMultipartUploads, ListObjectsV2, ListObjects
 *   POST /b?delete                     DeleteObjects
 *   PUT /b/k                           PutObject, or CopyObject with x-amz-copy-source
 *   GET|HEAD|DELETE /b/k               GetObject, HeadObject, DeleteObject
 *   POST /b/k?uploads                  CreateMultipartUpload
 *   PUT /b/k?partNumber&uploadId       UploadPart
 *   GET /b/k?uploadId                  ListParts
 *   POST /b/k?uploadId                 CompleteMultipartUpload
 *   DELETE /b/k?uploadId               AbortMultipartUpload
 *
 * Other sub-resources (acl, tagging, versioning, policy…) answer NotImplemented.
 */
import { AuthFailure } from '../authenticate.js';
import { AwsError } from '../aws-error.js';
import type { CloudRequest, CloudResponse, ServiceHandler } from '../service.js';
import {
  createBucket,
  deleteBucket,
  getBucketLocation,
  headBucket,
  listBuckets,
} from './bucket-operations.js';
import { listObjects, listObjectsV2 } from './list-operations.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listMultipartUploads,
  listParts,
  uploadPart,
} from './multipart-operations.js';
import {
  copyObject,
  deleteObject,
  deleteObjects,
  getObject,
  putObject,
} from './object-operations.js';
import { header } from './request-headers.js';
import { ownBucket, type S3Call } from './s3-call.js';
import { notImplemented, S3Error, s3ErrorResponse } from './s3-error.js';
import { xmlAnswer } from './s3-xml.js';
import type { S3Storage } from './storage.js';

/** Sub-resources S3 has and this endpoint does not serve. */
const UNSUPPORTED = [
  'accelerate',
  'acl',
  'analytics',
  'attributes',
  'cors',
  'encryption',
  'intelligent-tiering',
  'inventory',
  'legal-hold',
  'lifecycle',
  'logging',
  'metadataTable',
  'metrics',
  'notification',
  'object-lock',
  'ownershipControls',
  'policy',
  'policyStatus',
  'publicAccessBlock',
  'replication',
  'requestPayment',
  'restore',
  'retention',
  'select',
  'tagging',
  'torrent',
  'versions',
  'website',
];

function methodNotAllowed(): S3Error {
  return new S3Error(
    405,
    'MethodNotAllowed',
    'The specified method is not allowed against this resource.',
  );
}

async function route(call: S3Call): Promise<CloudResponse> {
  const { req } = call;
  const q = req.query;
  const method = req.method;
  if (call.bucket === '') {
    if (method === 'GET') return listBuckets(call);
    throw methodNotAllowed();
  }
  for (const name of UNSUPPORTED) if (q.has(name)) throw notImplemented(`?${name}`);
  if (call.key === '') {
    if (q.has('versioning')) {
      if (method !== 'GET') throw notImplemented('?versioning');
      await ownBucket(call);
      return xmlAnswer('VersioningConfiguration', []);
    }
    switch (method) {
      case 'PUT':
        return createBucket(call);
      case 'DELETE':
        return deleteBucket(call);
      case 'HEAD':
        return headBucket(call);
      case 'GET':
        if (q.has('location')) return getBucketLocation(call);
        if (q.has('uploads')) return listMultipartUploads(call);
        if (q.get('list-type') === '2') return listObjectsV2(call);
        return listObjects(call);
      case 'POST':
        if (q.has('delete')) return deleteObjects(call);
        throw methodNotAllowed();
      default:
        throw methodNotAllowed();
    }
  }
  const uploadId = q.has('uploadId');
  switch (method) {
    case 'PUT':
      if (uploadId || q.has('partNumber')) return uploadPart(call);
      if (header(req, 'x-amz-copy-source') !== undefined) return copyObject(call);
      return putObject(call);
    case 'GET':
      return uploadId ? listParts(call) : getObject(call, false);
    case 'HEAD':
      return getObject(call, true);
    case 'DELETE':
      return uploadId ? abortMultipartUpload(call) : deleteObject(call);
    case 'POST':
      if (q.has('uploads')) return createMultipartUpload(call);
      if (uploadId) return completeMultipartUpload(call);
      throw methodNotAllowed();
    default:
      throw methodNotAllowed();
  }
}

/** Splits a decoded path-style path into bucket and key. */
export function splitPath(path: string): { bucket: string; key: string } {
  const rest = path.startsWith('/') ? path.slice(1) : path;
  const slash = rest.indexOf('/');
  if (slash < 0) return { bucket: rest, key: '' };
  return { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
}

export function s3Service(storage: S3Storage): ServiceHandler {
  return async (req: CloudRequest): Promise<CloudResponse> => {
    const { bucket, key } = splitPath(req.path);
    try {
      return await route({ storage, req, bucket, key });
    } catch (error) {
      // Failures of the body's own checks (payload hash, chunk signatures) answer as the server's.
      if (error instanceof AuthFailure) throw error;
      if (!(error instanceof AwsError)) throw error;
      if (error.status === 304)
        return {
          status: 304,
          headers: error instanceof S3Error ? { ...error.headers } : {},
        };
      return s3ErrorResponse(error, req.requestId);
    }
  };
}
