/**
 * Each protocol's answer to an authentication failure: the codes and
 * statuses AWS services use (STS and IAM report a skewed clock as
 * SignatureDoesNotMatch "Signature expired", EC2 as RequestExpired, KMS as
 * InvalidSignatureException, S3 as RequestTimeTooSkewed).
 */
import type { AuthFailure, AuthFailureKind } from './authenticate.js';
import { AwsError, type WireProtocol } from './aws-error.js';

/** [status, code, message (the failure's own when absent)] */
type Answer = readonly [number, string, string?];

const TOKEN_INVALID = 'The security token included in the request is invalid.';
const TOKEN_EXPIRED = 'The security token included in the request is expired';

const QUERY: Record<AuthFailureKind, Answer> = {
  missing: [403, 'MissingAuthenticationToken'],
  incomplete: [400, 'IncompleteSignature'],
  'unknown-service': [403, 'SignatureDoesNotMatch'],
  'bad-region': [403, 'SignatureDoesNotMatch'],
  'unknown-key': [403, 'InvalidClientTokenId', TOKEN_INVALID],
  'bad-signature': [403, 'SignatureDoesNotMatch'],
  skewed: [403, 'SignatureDoesNotMatch'],
  'presign-expired': [403, 'AccessDenied'],
  'token-invalid': [403, 'InvalidClientTokenId', TOKEN_INVALID],
  'token-expired': [403, 'ExpiredToken', TOKEN_EXPIRED],
  'content-sha-mismatch': [403, 'SignatureDoesNotMatch'],
  'too-large': [413, 'RequestEntityTooLarge'],
};

const EC2: Record<AuthFailureKind, Answer> = {
  ...QUERY,
  missing: [401, 'AuthFailure', 'AWS was not able to validate the provided access credentials'],
  'unknown-key': [
    401,
    'AuthFailure',
    'AWS was not able to validate the provided access credentials',
  ],
  skewed: [400, 'RequestExpired', 'Request has expired.'],
  'presign-expired': [400, 'RequestExpired', 'Request has expired.'],
  'token-invalid': [
    401,
    'AuthFailure',
    'AWS was not able to validate the provided access credentials',
  ],
  'token-expired': [400, 'RequestExpired', 'Request has expired.'],
};

function jsonTable(status: number): Record<AuthFailureKind, Answer> {
  return {
    missing: [status, 'MissingAuthenticationTokenException', 'Missing Authentication Token'],
    incomplete: [status, 'IncompleteSignatureException'],
    'unknown-service': [status, 'InvalidSignatureException'],
    'bad-region': [status, 'InvalidSignatureException'],
    'unknown-key': [status, 'UnrecognizedClientException', TOKEN_INVALID],
    'bad-signature': [status, 'InvalidSignatureException'],
    skewed: [status, 'InvalidSignatureException'],
    'presign-expired': [status, 'AccessDeniedException'],
    'token-invalid': [status, 'UnrecognizedClientException', TOKEN_INVALID],
    'token-expired': [status, 'ExpiredTokenException', TOKEN_EXPIRED],
    'content-sha-mismatch': [status, 'InvalidSignatureException'],
    'too-large': [413, 'RequestEntityTooLargeException'],
  };
}

const S3: Record<AuthFailureKind, Answer> = {
  missing: [403, 'AccessDenied', 'Access Denied'],
  incomplete: [400, 'AuthorizationHeaderMalformed'],
  'unknown-service': [403, 'SignatureDoesNotMatch'],
  'bad-region': [400, 'AuthorizationHeaderMalformed'],
  'unknown-key': [
    403,
    'InvalidAccessKeyId',
    'The AWS Access Key Id you provided does not exist in our records.',
  ],
  'bad-signature': [403, 'SignatureDoesNotMatch'],
  skewed: [
    403,
    'RequestTimeTooSkewed',
    'The difference between the request time and the current time is too large.',
  ],
  'presign-expired': [403, 'AccessDenied', 'Request has expired'],
  'token-invalid': [400, 'InvalidToken', 'The provided token is malformed or otherwise invalid.'],
  'token-expired': [400, 'ExpiredToken', 'The provided token has expired.'],
  'content-sha-mismatch': [400, 'XAmzContentSHA256Mismatch'],
  'too-large': [400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size'],
};

const TABLES: Record<WireProtocol, Record<AuthFailureKind, Answer>> = {
  query: QUERY,
  ec2: EC2,
  json: jsonTable(400),
  'rest-json': jsonTable(403),
  'rest-xml': S3,
};

export function authError(protocol: WireProtocol, failure: AuthFailure): AwsError {
  const [status, code, message] = TABLES[protocol][failure.kind];
  return new AwsError(status, code, message ?? failure.message);
}
