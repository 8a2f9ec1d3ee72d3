/** CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation, ListBuckets. */
import { isRegion } from '../regions.js';
import type { CloudResponse } from '../service.js';
import { checkBucketName } from './bucket-name.js';
import { checkRegion, ownBucket, ownerXml, type S3Call } from './s3-call.js';
import { S3Error } from './s3-error.js';
import { children, el, isoTime, parseXml, readSmallBody, text, xmlAnswer } from './s3-xml.js';

/** S3's "no constraint" region. */
const US_EAST_1 = 'us-east-1';

/**
 * The bucket's region is its LocationConstraint, else us-east-1. As in S3,
 * naming us-east-1 explicitly is invalid, and a request signed for a
 * regional endpoint other than us-east-1 must name that region.
 */
async function requestedRegion(call: S3Call): Promise<string> {
  const body = await readSmallBody(call.req.payload, 64 * 1024);
  let constraint: string | undefined;
  if (body.length > 0) {
    const doc = parseXml(body);
    const config = doc.CreateBucketConfiguration;
    if (config === undefined) throw malformed();
    const found = children(config, 'LocationConstraint');
    if (found.length > 1) throw malformed();
    constraint = found.length === 0 ? undefined : text(found[0]);
    if (constraint === '') constraint = undefined;
  }
  const signed = call.req.region;
  if (constraint === undefined) {
    if (signed !== US_EAST_1)
      throw new S3Error(
        400,
        'IllegalLocationConstraintException',
        'The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.',
      );
    return US_EAST_1;
  }
  if (!isRegion(constraint) || constraint === US_EAST_1)
    throw new S3Error(
      400,
      'InvalidLocationConstraint',
      'The specified location-constraint is not valid',
      { LocationConstraint: constraint.slice(0, 64) },
    );
  if (signed !== US_EAST_1 && signed !== constraint)
    throw new S3Error(
      400,
      'IllegalLocationConstraintException',
      `The ${constraint} location constraint is incompatible for the region specific endpoint this request was sent to.`,
    );
  return constraint;
}

function malformed(): S3Error {
  return new S3Error(
    400,
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema',
  );
}

export async function createBucket(call: S3Call): Promise<CloudResponse> {
  checkBucketName(call.bucket);
  const region = await requestedRegion(call);
  await call.storage.createBucket(call.req.account, call.bucket, region);
  return { status: 200, headers: { location: `/${call.bucket}` } };
}

export async function deleteBucket(call: S3Call): Promise<CloudResponse> {
  await ownBucket(call);
  await call.storage.deleteBucket(call.req.account, call.bucket);
  return { status: 204, headers: {} };
}

export async function headBucket(call: S3Call): Promise<CloudResponse> {
  const bucket = await call.storage.bucket(call.req.account, call.bucket);
  checkRegion(call, bucket.record.region);
  return { status: 200, headers: { 'x-amz-bucket-region': bucket.record.region } };
}

/** Answered whatever region the request was signed for (it is how clients find the region). */
export async function getBucketLocation(call: S3Call): Promise<CloudResponse> {
  const bucket = await call.storage.bucket(call.req.account, call.bucket);
  const region = bucket.record.region;
  return xmlAnswer('LocationConstraint', [region === US_EAST_1 ? '' : region]);
}

export async function listBuckets(call: S3Call): Promise<CloudResponse> {
  const q = call.req.query;
  const prefix = q.get('prefix') ?? '';
  const region = q.get('bucket-region');
  const buckets = call.storage
    .listBuckets(call.req.account)
    .filter((b) => b.name.startsWith(prefix) && (region === null || b.region === region));
  return xmlAnswer('ListAllMyBucketsResult', [
    ownerXml(call.req.account),
    el(
      'Buckets',
      buckets.map((b) =>
        el(
          'Bucket',
          el('Name', b.name),
          el('CreationDate', isoTime(b.created)),
          el('BucketRegion', b.region),
        ),
      ),
    ),
    prefix === '' ? undefined : el('Prefix', prefix),
  ]);
}
