import type { CloudResponse } from './service.js';
import { XML_DECLARATION, xmlEscape } from './xml.js';

/**
 * The wire protocols of the services behind the endpoint; each has its own
 * error shape: EC2 query, STS/IAM query, JSON 1.1 (KMS), REST-JSON (EBS
 * direct), REST-XML (S3).
 */
export type WireProtocol = 'ec2' | 'query' | 'json' | 'rest-json' | 'rest-xml';

/**
 * An error as AWS reports it: an HTTP status, a code the SDKs map to an
 * exception class and a message. Services throw it; the server encodes it
 * in the service's protocol.
 */
export class AwsError extends Error {
  override readonly name = 'AwsError';
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** Sender (the caller's fault) or Receiver, as query-protocol errors say. */
  get fault(): 'Sender' | 'Receiver' {
    return this.status >= 500 ? 'Receiver' : 'Sender';
  }
}

export function isAwsError(error: unknown): error is AwsError {
  return error instanceof AwsError;
}

const STS_XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** Encodes `error` the way a service of `protocol` does on the wire. */
export function encodeAwsError(
  protocol: WireProtocol,
  error: AwsError,
  requestId: string,
  options: { readonly xmlns?: string } = {},
): CloudResponse {
  const code = xmlEscape(error.code);
  const message = xmlEscape(error.message);
  const id = xmlEscape(requestId);
  switch (protocol) {
    case 'ec2':
      return xmlResponse(
        error.status,
        `<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>${id}</RequestID></Response>`,
        { 'x-amzn-requestid': requestId },
        'text/xml;charset=UTF-8',
      );
    case 'query':
      return xmlResponse(
        error.status,
        `<ErrorResponse xmlns="${options.xmlns ?? STS_XMLNS}"><Error><Type>${error.fault}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${id}</RequestId></ErrorResponse>`,
        { 'x-amzn-requestid': requestId },
        'text/xml',
      );
    case 'json':
      return {
        status: error.status,
        headers: {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-requestid': requestId,
          'x-amzn-errortype': error.code,
        },
        body: Buffer.from(JSON.stringify({ __type: error.code, message: error.message })),
      };
    case 'rest-json':
      return {
        status: error.status,
        headers: {
          'content-type': 'application/json',
          'x-amzn-requestid': requestId,
          'x-amzn-errortype': error.code,
        },
        body: Buffer.from(JSON.stringify({ message: error.message })),
      };
    case 'rest-xml':
      return xmlResponse(
        error.status,
        `<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${id}</RequestId></Error>`,
        { 'x-amz-request-id': requestId, 'x-amz-id-2': requestId },
        'application/xml',
      );
  }
}

function xmlResponse(
  status: number,
  xml: string,
  headers: Record<string, string>,
  contentType: string,
): CloudResponse {
  return {
    status,
    headers: { 'content-type': contentType, ...headers },
    body: Buffer.from(`${XML_DECLARATION}${xml}`),
  };
}
