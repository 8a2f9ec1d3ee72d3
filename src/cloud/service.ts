import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { CloudPayload } from './payload.js';
import type { RequestBody } from './request-body.js';

/** A request the endpoint has authenticated, handed to one service. */
export interface CloudRequest {
  readonly method: string;
  /** The path, decoded, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /**
   * The whole body (the server caps its size per service); empty for a
   * streaming service. It may be a buffer the service's receiver lends
   * (see CloudService.receiver): valid until the handler answers.
   */
  readonly body: Buffer;
  /**
   * The same body with its SHA-256, known or computed on first use (set by
   * the server; absent in a request made by hand, which has only `body`).
   */
  readonly content?: RequestBody;
  /** A streaming service's body, read by the handler as it arrives (see CloudService.streaming). */
  readonly payload?: CloudPayload;
  /** The 12-digit account the credentials belong to. */
  readonly account: string;
  readonly region: string;
  /** The caller: arn:aws:iam::ACCOUNT:root, or an assumed-role ARN. */
  readonly principal: string;
  readonly requestId: string;
}

export interface CloudResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  /** Sent instead of `body` (a streaming service's large answers); the handler sets content-length. */
  readonly stream?: Readable;
  /** The error code of an error the service encoded itself, for the access log. */
  readonly errorCode?: string;
}

/** One AWS service behind the endpoint (the SigV4 scope's service name picks it). */
export type ServiceHandler = (request: CloudRequest) => Promise<CloudResponse>;
