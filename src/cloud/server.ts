/**
 * The HTTP side of the endpoint: reads a request, verifies its SigV4
 * signature against the credentials the resolver knows, and hands it to
 * the service its credential scope names. Every failure goes back in that
 * service's own error shape.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { authError } from './auth-errors.js';
import {
  AuthFailure,
  checkTime,
  hasAuth,
  type ParsedAuth,
  parseAuth,
  verifySignature,
  verifyStreamingSignature,
  type WireRequest,
} from './authenticate.js';
import { AwsError, encodeAwsError, type WireProtocol } from './aws-error.js';
import { type CloudPayload, openPayload } from './payload.js';
import { isRegion } from './regions.js';
import { type BodyHead, type BodyReceiver, RequestBody } from './request-body.js';
import type { CloudRequest, CloudResponse, ServiceHandler } from './service.js';
import { parseRawQuery } from './sigv4.js';

/** A service as registered with the server. */
export interface CloudService {
  /** The SigV4 scope's service name: sts, kms, ec2, ebs, s3. */
  readonly name: string;
  readonly protocol: WireProtocol;
  /** The largest body the service accepts (not applied to a streaming service). */
  readonly maxBodyBytes: number;
  readonly handler: ServiceHandler;
  /**
   * A receiver for this request's body, chunk by chunk, instead of the
   * server's copy (undefined: the server reads it). Asked only once the
   * signature over the headers holds, for a body with a Content-Length.
   */
  readonly receiver?: (head: BodyHead) => BodyReceiver | undefined;
  /**
   * The service reads bodies as streams (request.payload) and may answer with
   * one: the server verifies the signature over the headers and the declared
   * payload hash, then hands the body over unread; the payload stream checks
   * the hash or the chunk signatures as it flows and fails at the end (or at
   * the bad chunk) when they do not hold.
   */
  readonly streaming?: boolean;
}

/** What an access key signs as. */
export interface SigningIdentity {
  readonly secretAccessKey: string;
  readonly account: string;
  readonly principal: string;
  /** Temporary credentials only: the token and when it expires (epoch ms). */
  readonly sessionToken?: string;
  readonly expiration?: number;
}

export interface CloudServerOptions {
  readonly host?: string;
  readonly port?: number;
  readonly resolveKey: (accessKeyId: string) => SigningIdentity | undefined;
  /** The server's clock (tests move it). */
  readonly now?: () => number;
  /** One line per request: method, path, service, status, error code, account. */
  readonly log?: (line: string) => void;
}

/** An unread rest of a body up to this size is drained to keep the connection; beyond, it is closed. */
const DRAIN_LIMIT = 1024 * 1024;

/** A body larger than the service's cap. */
class TooLarge extends Error {}

/**
 * Reads a whole body, at most `max` bytes. With a Content-Length the body
 * goes straight into one buffer of that size (or to the service's receiver);
 * a body longer than it declared is refused as too large.
 */
function readBody(
  req: IncomingMessage,
  max: number,
  receiverFor: ((length: number) => BodyReceiver | undefined) | undefined,
): Promise<{ body: RequestBody; receiver: BodyReceiver | undefined }> {
  const header = req.headers['content-length'];
  const declared = header === undefined ? Number.NaN : Number(header);
  if (Number.isFinite(declared) && declared > max) return Promise.reject(new TooLarge());
  const known = Number.isSafeInteger(declared) && declared >= 0;
  const limit = known ? declared : max;
  return new Promise((resolve, reject) => {
    const receiver = known ? receiverFor?.(declared) : undefined;
    const into = receiver === undefined && known ? Buffer.allocUnsafe(declared) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: unknown) => {
      receiver?.dispose();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limit) {
        req.off('data', onData);
        req.resume();
        fail(new TooLarge());
        return;
      }
      if (receiver !== undefined) receiver.write(chunk);
      else if (into !== undefined) chunk.copy(into, size);
      else chunks.push(chunk);
      size += chunk.length;
    };
    req.on('data', onData);
    req.once('end', () => {
      if (receiver !== undefined) {
        try {
          resolve({ body: receiver.end(), receiver });
        } catch (error) {
          fail(error);
        }
        return;
      }
      const bytes = into === undefined ? Buffer.concat(chunks, size) : into.subarray(0, size);
      resolve({ body: new RequestBody(bytes), receiver });
    });
    req.once('error', fail);
  });
}

/** Without a scope to name the service, the request's shape picks the error dialect. */
function guessProtocol(
  req: IncomingMessage,
  pairs: ReadonlyArray<readonly [string, string]>,
): WireProtocol {
  if (req.headers['x-amz-target'] !== undefined) return 'json';
  const type = String(req.headers['content-type'] ?? '');
  const action = pairs.some(([k]) => k === 'Action');
  if (type.startsWith('application/x-www-form-urlencoded') || action) {
    const version = pairs.find(([k]) => k === 'Version')?.[1];
    return version === '2016-11-15' ? 'ec2' : 'query';
  }
  if ((req.url ?? '').startsWith('/snapshots')) return 'rest-json';
  return 'rest-xml';
}

export class CloudServer {
  private readonly options: CloudServerOptions;
  private readonly services = new Map<string, CloudService>();
  private readonly server: Server;
  private readonly now: () => number;

  constructor(options: CloudServerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    const serve = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
      this.handle(req, res, expectsContinue).catch((error: unknown) => {
        this.options.log?.(`internal error: ${(error as Error).stack ?? String(error)}`);
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    };
    this.server = createServer((req, res) => serve(req, res, false));
    // Expect: 100-continue (the SDKs send it with large bodies): 100 goes out only
    // when the body is about to be read, so a refused request never sends its body.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) =>
      serve(req, res, true),
    );
  }

  register(service: CloudService): void {
    this.services.set(service.name, service);
  }

  serviceNames(): string[] {
    return [...this.services.keys()].sort();
  }

  /** Starts listening; resolves to the endpoint URL. */
  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        const a = this.server.address() as AddressInfo;
        const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve(`http://${host}:${a.port}`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(
    req: IncomingMessage,
    res: ServerResponse,
    expectsContinue: boolean,
  ): Promise<void> {
    let continued = false;
    const sendContinue = () => {
      if (expectsContinue && !continued) {
        continued = true;
        res.writeContinue();
      }
    };
    const requestId = randomUUID();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    let protocol: WireProtocol = 'rest-xml';
    let serviceName = '-';
    let account = '-';
    let response: CloudResponse;
    let errorCode = '';
    let closeAfter = false;
    let receiver: BodyReceiver | undefined;
    try {
      let pairs: Array<[string, string]>;
      let path: string;
      try {
        pairs = parseRawQuery(rawQuery);
        path = decodeURIComponent(rawPath);
      } catch {
        protocol = guessProtocol(req, []);
        throw new AwsError(400, 'InvalidURI', 'Could not parse the specified URI.');
      }
      protocol = guessProtocol(req, pairs);
      const wire: WireRequest = {
        method: req.method ?? 'GET',
        rawPath,
        queryPairs: pairs,
        rawHeaders: req.rawHeaders,
        header: (name) => {
          const v = req.headers[name];
          return Array.isArray(v) ? v.join(',') : v;
        },
      };
      if (!hasAuth(wire))
        throw new AuthFailure('missing', 'Request is missing Authentication Token');
      const auth: ParsedAuth = parseAuth(wire);
      const service = this.services.get(auth.service);
      if (service === undefined)
        throw new AuthFailure(
          'unknown-service',
          `Credential should be scoped to correct service: '${auth.service}' is not served here (${this.serviceNames().join(', ')}).`,
        );
      protocol = service.protocol;
      serviceName = service.name;
      if (!isRegion(auth.region))
        throw new AuthFailure(
          'bad-region',
          `Credential should be scoped to a valid region, not '${auth.region}'.`,
        );
      const now = this.now();
      checkTime(auth, now);
      const identity = this.options.resolveKey(auth.accessKeyId);
      if (identity === undefined)
        throw new AuthFailure(
          'unknown-key',
          'The security token included in the request is invalid.',
        );
      if (identity.sessionToken !== auth.securityToken)
        throw new AuthFailure(
          'token-invalid',
          'The security token included in the request is invalid.',
        );
      if (identity.expiration !== undefined && identity.expiration <= now)
        throw new AuthFailure(
          'token-expired',
          'The security token included in the request is expired',
        );
      let content: RequestBody;
      let payload: CloudPayload | undefined;
      if (service.streaming === true) {
        const check = verifyStreamingSignature(wire, auth, identity.secretAccessKey);
        content = new RequestBody(Buffer.alloc(0));
        payload = openPayload(req, check, sendContinue);
      } else {
        const pick = service.receiver;
        try {
          sendContinue();
          ({ body: content, receiver } = await readBody(
            req,
            service.maxBodyBytes,
            pick === undefined
              ? undefined
              : (length) => pick({ method: wire.method, rawPath, header: wire.header, length }),
          ));
        } catch (error) {
          if (!(error instanceof TooLarge)) throw error;
          closeAfter = true;
          throw new AuthFailure(
            'too-large',
            `The request body exceeds the ${service.maxBodyBytes} bytes ${service.name} accepts.`,
          );
        }
        verifySignature(wire, auth, identity.secretAccessKey, content);
      }
      account = identity.account;
      const request: CloudRequest = {
        method: wire.method,
        path,
        query: new URLSearchParams(pairs),
        headers: req.headers,
        body: content.bytes,
        content,
        ...(payload === undefined ? {} : { payload }),
        account: identity.account,
        region: auth.region,
        principal: identity.principal,
        requestId,
      };
      response = await service.handler(request);
      errorCode = response.errorCode ?? '';
    } catch (error) {
      const aws =
        error instanceof AuthFailure
          ? authError(protocol, error)
          : error instanceof AwsError
            ? error
            : null;
      errorCode = aws?.code ?? 'InternalFailure';
      if (aws === null) {
        this.options.log?.(
          `internal error ${requestId}: ${(error as Error).stack ?? String(error)}`,
        );
        response = encodeAwsError(
          protocol,
          new AwsError(
            500,
            protocol === 'rest-xml' ? 'InternalError' : 'InternalFailure',
            'We encountered an internal error. Please try again.',
          ),
          requestId,
        );
      } else response = encodeAwsError(protocol, aws, requestId);
    }
    // The handler has answered: the body's buffers are not needed any more.
    receiver?.dispose();
    // A client still waiting for 100 Continue sends no body: the connection cannot be reused.
    if (expectsContinue && !continued) closeAfter = true;
    this.send(req, res, response, protocol, requestId, closeAfter);
    this.options.log?.(
      `${req.method} ${rawPath} ${serviceName} ${response.status} ${errorCode} ${account}`.replace(
        / +/g,
        ' ',
      ),
    );
  }

  private send(
    req: IncomingMessage,
    res: ServerResponse,
    response: CloudResponse,
    protocol: WireProtocol,
    requestId: string,
    closeRequested: boolean,
  ): void {
    let closeAfter = closeRequested;
    const headers: Record<string, string> = { ...response.headers };
    if (protocol === 'rest-xml') {
      headers['x-amz-request-id'] ??= requestId;
    } else headers['x-amzn-requestid'] ??= requestId;
    const body = response.body ?? Buffer.alloc(0);
    if (headers['content-length'] === undefined)
      headers['content-length'] = String(response.stream === undefined ? body.length : 0);
    // A body the service did not read (an error before it, or a streaming
    // service's early answer): a small rest is drained so the connection can
    // be reused; a large one is not worth receiving.
    if (!req.complete) {
      const declared = Number(req.headers['content-length']);
      if (!(declared <= DRAIN_LIMIT)) closeAfter = true;
      req.unpipe();
      req.resume();
    }
    if (closeAfter) headers.connection = 'close';
    // The SDKs correct their clock from this header: it is the server's clock.
    headers.date ??= new Date(this.now()).toUTCString();
    res.writeHead(response.status, headers);
    const stream = response.stream;
    if (stream === undefined) {
      if (req.method === 'HEAD') res.end();
      else res.end(body);
      return;
    }
    if (req.method === 'HEAD') {
      stream.destroy();
      res.end();
      return;
    }
    // Backpressure from the socket paces the reads; a failed read cuts the
    // connection, so that the client sees a short body rather than a whole one.
    pipeline(stream, res).catch((error: unknown) => {
      this.options.log?.(`response stream ${requestId} failed: ${(error as Error).message}`);
      res.destroy();
    });
  }
}
