import type { IncomingHttpHeaders } from 'node:http';
import type { CloudResponse } from '../service.js';
import { EbsError, invalid } from './ebs-error.js';

/** A REST-JSON answer: the status and a JSON document (fields left undefined are omitted). */
export function jsonResponse(
  status: number,
  requestId: string,
  doc: Readonly<Record<string, unknown>>,
  headers: Readonly<Record<string, string>> = {},
): CloudResponse {
  return {
    status,
    headers: {
      'Content-Type': 'application/json',
      'x-amzn-RequestId': requestId,
      ...headers,
    },
    body: Buffer.from(JSON.stringify(doc)),
  };
}

/**
 * An error as REST-JSON: the exception's name in x-amzn-ErrorType (which
 * the AWS SDKs read first) and a body with the message and the exception's
 * members. The model names the member Message; most AWS JSON services send
 * message, which botocore and the SDK v3 both read too, so both are sent.
 */
export function errorResponse(
  requestId: string,
  name: string,
  status: number,
  message: string,
  reason?: string,
): CloudResponse {
  // The model's ErrorMessage is at most 256 characters.
  const text = message.length > 256 ? `${message.slice(0, 253)}...` : message;
  return jsonResponse(
    status,
    requestId,
    {
      message: text,
      Message: text,
      ...(reason === undefined ? {} : { Reason: reason }),
    },
    { 'x-amzn-ErrorType': name },
  );
}

export function ebsErrorResponse(requestId: string, error: EbsError): CloudResponse {
  return errorResponse(requestId, error.name, error.status, error.message, error.reason);
}

/** A header's single value (repeated headers are refused). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) {
    throw invalid('INVALID_PARAMETER_VALUE', `The header ${name} is given more than once.`);
  }
  return v;
}

/** A decimal integer from a header or query parameter, or undefined when absent. */
export function optionalInt(value: string | null | undefined, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!/^-?[0-9]{1,16}$/.test(value)) {
    throw invalid('INVALID_PARAMETER_VALUE', `The value of ${name} is not an integer.`);
  }
  return Number(value);
}

export function requiredInt(value: string | null | undefined, name: string): number {
  const n = optionalInt(value, name);
  if (n === undefined) throw invalid('INVALID_PARAMETER_VALUE', `${name} is required.`);
  return n;
}

export function requiredString(value: string | null | undefined, name: string): string {
  if (value === undefined || value === null || value === '') {
    throw invalid('INVALID_PARAMETER_VALUE', `${name} is required.`);
  }
  return value;
}

/** Seconds since the epoch: the REST-JSON protocol's default timestamp format. */
export function epochSeconds(d: Date): number {
  return d.getTime() / 1000;
}

/** Parses a JSON request body to an object, or throws ValidationException. */
export function jsonBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('INVALID_PARAMETER_VALUE', 'The request body is not JSON.');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw invalid('INVALID_PARAMETER_VALUE', 'The request body is not a JSON object.');
  }
  return doc as Record<string, unknown>;
}

export function isEbs(error: unknown): error is EbsError {
  return error instanceof EbsError;
}
