/**
 * S3's REST-XML errors: a status, a code the SDKs turn into an exception
 * class, AWS's message, and the extra elements S3 adds (BucketName, Key,
 * UploadId, Region…).
 */
import { AwsError } from '../aws-error.js';
import type { CloudResponse } from '../service.js';
import { XML_DECLARATION, xmlEscape } from '../xml.js';

export class S3Error extends AwsError {
  readonly extra: Readonly<Record<string, string>>;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: string,
    message: string,
    extra: Record<string, string> = {},
    headers: Record<string, string> = {},
  ) {
    super(status, code, message);
    this.extra = extra;
    this.headers = headers;
  }
}

export function s3ErrorResponse(error: AwsError, requestId: string): CloudResponse {
  const extra = error instanceof S3Error ? error.extra : {};
  let fields = '';
  for (const [name, value] of Object.entries(extra))
    fields += `<${name}>${xmlEscape(value)}</${name}>`;
  const xml = `${XML_DECLARATION}<Error><Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message>${fields}<RequestId>${xmlEscape(requestId)}</RequestId><HostId>${xmlEscape(requestId)}</HostId></Error>`;
  return {
    status: error.status,
    headers: {
      'content-type': 'application/xml',
      'x-amz-request-id': requestId,
      'x-amz-id-2': requestId,
      ...(error instanceof S3Error ? error.headers : {}),
    },
    body: Buffer.from(xml),
    errorCode: error.code,
  };
}

// The errors S3 answers most, with its wording.

export const noSuchBucket = (bucket: string) =>
  new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });

export const noSuchKey = (key: string) =>
  new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key });

export const noSuchUpload = (uploadId: string) =>
  new S3Error(
    404,
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
    { UploadId: uploadId },
  );

export const accessDenied = () => new S3Error(403, 'AccessDenied', 'Access Denied');

export const invalidArgument = (message: string, name?: string, value?: string) =>
  new S3Error(
    400,
    'InvalidArgument',
    message,
    name === undefined ? {} : { ArgumentName: name, ArgumentValue: (value ?? '').slice(0, 256) },
  );

export const invalidRequest = (message: string) => new S3Error(400, 'InvalidRequest', message);

export const malformedXml = () =>
  new S3Error(
    400,
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema',
  );

export const notImplemented = (what: string) =>
  new S3Error(
    501,
    'NotImplemented',
    'A header you provided implies functionality that is not implemented',
    { Header: what },
  );

export const badDigest = (what: string) =>
  new S3Error(400, 'BadDigest', `The ${what} you specified did not match the calculated checksum.`);
