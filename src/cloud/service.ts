import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { BodyDigest } from './body-digest.js';
import type { CloudPayload } from './payload.js';

/** A request the endpoint has authenticated, handed to one service. */
export interface CloudRequest {
  readonly method: string;
  /** The path, decoded, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /**
   * The whole body (the server caps its size per service); empty for a
   * streaming service. Valid until the handler answers: the server reuses
   * the buffer then (a handler keeps a copy of what it needs after).
   */
  readonly body: Buffer;
  /** A streaming service's body, read by the handler as it arrives (see CloudService.streaming). */
  readonly payload?: CloudPayload;
  /** The body's SHA-256, computed on first use (not for a streaming service). */
  readonly bodySha256?: BodyDigest;
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
