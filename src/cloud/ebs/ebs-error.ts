/**
 * The exceptions of the EBS direct API model (ebs-2019-11-02), with the HTTP
 * status the model gives each. The engine throws EbsError; the route handler
 * encodes it as REST-JSON. These are wire errors for AWS clients, not
 * FerryErrors: their names are AWS's, and callers inside ferry match on `name`.
 */
export const EBS_EXCEPTIONS = {
  AccessDeniedException: 403,
  ConcurrentLimitExceededException: 400,
  ConflictException: 409,
  InternalServerException: 500,
  RequestThrottledException: 400,
  ResourceNotFoundException: 404,
  ServiceQuotaExceededException: 402,
  ValidationException: 400,
} as const;

export type EbsExceptionName = keyof typeof EBS_EXCEPTIONS;

/** The Reason enums of the model, per exception. */
export type ValidationReason =
  | 'INVALID_CUSTOMER_KEY'
  | 'INVALID_PAGE_TOKEN'
  | 'INVALID_BLOCK_TOKEN'
  | 'INVALID_GRANT_TOKEN'
  | 'INVALID_SNAPSHOT_ID'
  | 'UNRELATED_SNAPSHOTS'
  | 'INVALID_BLOCK'
  | 'INVALID_CONTENT_ENCODING'
  | 'INVALID_TAG'
  | 'INVALID_DEPENDENCY_REQUEST'
  | 'INVALID_PARAMETER_VALUE'
  | 'INVALID_VOLUME_SIZE'
  | 'CONFLICTING_BLOCK_UPDATE'
  | 'INVALID_IMAGE_ID'
  | 'WRITE_REQUEST_TIMEOUT';
export type AccessDeniedReason = 'UNAUTHORIZED_ACCOUNT' | 'DEPENDENCY_ACCESS_DENIED';
export type ThrottledReason =
  | 'ACCOUNT_THROTTLED'
  | 'DEPENDENCY_REQUEST_THROTTLED'
  | 'RESOURCE_LEVEL_THROTTLE';
export type NotFoundReason =
  | 'SNAPSHOT_NOT_FOUND'
  | 'GRANT_NOT_FOUND'
  | 'DEPENDENCY_RESOURCE_NOT_FOUND'
  | 'IMAGE_NOT_FOUND';
export type QuotaReason = 'DEPENDENCY_SERVICE_QUOTA_EXCEEDED';

export type EbsReason =
  | ValidationReason
  | AccessDeniedReason
  | ThrottledReason
  | NotFoundReason
  | QuotaReason;

export class EbsError extends Error {
  override readonly name: EbsExceptionName;
  readonly status: number;
  readonly reason: EbsReason | undefined;

  constructor(name: EbsExceptionName, message: string, reason?: EbsReason) {
    super(message);
    this.name = name;
    this.status = EBS_EXCEPTIONS[name];
    this.reason = reason;
  }
}

export function isEbsError(error: unknown, name?: EbsExceptionName): error is EbsError {
  return error instanceof EbsError && (name === undefined || error.name === name);
}

export function invalid(reason: ValidationReason, message: string): EbsError {
  return new EbsError('ValidationException', message, reason);
}

export function snapshotNotFound(id: string): EbsError {
  return new EbsError(
    'ResourceNotFoundException',
    `The snapshot '${id}' does not exist.`,
    'SNAPSHOT_NOT_FOUND',
  );
}
