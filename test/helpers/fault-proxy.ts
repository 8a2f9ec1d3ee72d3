/**
 * A fault-injecting HTTP proxy for publish tests: it sits on 127.0.0.1:0 in
 * front of an endpoint (the local cloud), forwards requests unchanged
 * (headers included, so SigV4 still holds; bodies stream through, only small
 * form bodies are read to find their Action) and injects faults by rules:
 *
 * - status: answer STATUS with the service's own error shape (EC2 and S3
 *   XML, STS query XML, KMS JSON 1.1, EBS REST-JSON with x-amzn-ErrorType)
 *   without forwarding;
 * - reset-request: destroy the client's socket before forwarding anything;
 * - reset-response: forward, then destroy the socket: at once when the
 *   answer arrives (`afterBytes` 0, the default: the server did the work and
 *   the client hears nothing of it), or after the headers and `afterBytes`
 *   of the body (a response cut short);
 * - delay: wait `delayMs`, then forward.
 *
 * A rule fires on every match, the first `firstN` matches, every `everyNth`
 * match, or with `probability` from a seeded generator (the same seed, the
 * same faults). Rules are tried in order; the first that fires wins, and a
 * rule counts only the requests that reached it.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { AwsError, encodeAwsError, type WireProtocol } from '../../src/cloud/aws-error.js';

export interface FaultMatch {
  /** The SigV4 scope's service: ec2, ebs, s3, sts, kms. */
  readonly service?: string;
  /** The operation, as the SDK names it: DescribeImages, PutSnapshotBlock, PutObject. */
  readonly operation?: string;
  readonly method?: string;
  readonly path?: RegExp;
}

export type FaultKind = 'status' | 'reset-request' | 'reset-response' | 'delay';

export interface FaultRule {
  readonly match: FaultMatch;
  readonly fault: FaultKind;
  /** status: the HTTP status (default 503). */
  readonly status?: number;
  /** status: the error code (default: the service's code for the status). */
  readonly errorCode?: string;
  /** status: a Retry-After header value. */
  readonly retryAfter?: string;
  /** reset-response: body bytes forwarded (with the headers) before the reset; 0 (default): none, no headers either. */
  readonly afterBytes?: number;
  /** delay: how long (default 1000). */
  readonly delayMs?: number;
  readonly firstN?: number;
  readonly everyNth?: number;
  readonly probability?: number;
}

export interface RequestInfo {
  readonly service: string | undefined;
  readonly operation: string | undefined;
  readonly method: string;
  readonly path: string;
}

export interface ProxiedRequest extends RequestInfo {
  /** The index of the rule that fired, if one did. */
  readonly rule: number | undefined;
}

export interface RuleCount {
  /** Requests that matched the rule (and reached it). */
  seen: number;
  /** Faults it injected. */
  injected: number;
}

/** Form bodies up to this size are read to find their Action; bigger ones stream on. */
const MAX_FORM_BYTES = 64 * 1024;

const PROTOCOL: Record<string, WireProtocol> = {
  ec2: 'ec2',
  sts: 'query',
  kms: 'json',
  ebs: 'rest-json',
  s3: 'rest-xml',
};

/** The error code a service answers with for a status, when the rule names none. */
export function defaultErrorCode(service: string | undefined, status: number): string {
  if (status === 429)
    return (
      {
        ebs: 'RequestThrottledException',
        ec2: 'RequestLimitExceeded',
        s3: 'SlowDown',
        sts: 'Throttling',
      }[service ?? ''] ?? 'ThrottlingException'
    );
  if (status === 503)
    return { s3: 'SlowDown', ec2: 'Unavailable' }[service ?? ''] ?? 'ServiceUnavailableException';
  if (status >= 500)
    return (
      { ebs: 'InternalServerException', kms: 'KMSInternalException', sts: 'InternalFailure' }[
        service ?? ''
      ] ?? 'InternalError'
    );
  return 'InvalidRequest';
}

/** mulberry32: a small seeded generator in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function serviceOf(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const auth = req.headers.authorization ?? '';
  const scope = /Credential=([^,\s]+)/.exec(auth)?.[1] ?? query.get('X-Amz-Credential') ?? '';
  return scope.split('/')[3];
}

function ebsOperation(method: string, parts: string[]): string | undefined {
  if (parts[0] !== 'snapshots') return undefined;
  if (method === 'POST' && parts.length === 1) return 'StartSnapshot';
  if (method === 'POST' && parts[1] === 'completion') return 'CompleteSnapshot';
  if (parts.length === 4 && parts[2] === 'blocks')
    return method === 'PUT'
      ? 'PutSnapshotBlock'
      : method === 'GET'
        ? 'GetSnapshotBlock'
        : undefined;
  if (method === 'GET' && parts.length === 3 && parts[2] === 'blocks') return 'ListSnapshotBlocks';
  if (method === 'GET' && parts.length === 3 && parts[2] === 'changedblocks')
    return 'ListChangedBlocks';
  return undefined;
}

function s3Operation(
  method: string,
  parts: string[],
  query: URLSearchParams,
  req: IncomingMessage,
): string | undefined {
  const bucket = parts.length >= 1;
  const key = parts.length >= 2;
  const copy = req.headers['x-amz-copy-source'] !== undefined;
  switch (method) {
    case 'GET':
      if (!bucket) return 'ListBuckets';
      if (key) return query.has('uploadId') ? 'ListParts' : 'GetObject';
      if (query.has('uploads')) return 'ListMultipartUploads';
      if (query.has('location')) return 'GetBucketLocation';
      return query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    case 'HEAD':
      return key ? 'HeadObject' : 'HeadBucket';
    case 'PUT':
      if (!key) return 'CreateBucket';
      if (query.has('partNumber')) return copy ? 'UploadPartCopy' : 'UploadPart';
      return copy ? 'CopyObject' : 'PutObject';
    case 'POST':
      if (!key) return query.has('delete') ? 'DeleteObjects' : undefined;
      if (query.has('uploads')) return 'CreateMultipartUpload';
      return query.has('uploadId') ? 'CompleteMultipartUpload' : undefined;
    case 'DELETE':
      if (!key) return 'DeleteBucket';
      return query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    default:
      return undefined;
  }
}

function isSmallForm(req: IncomingMessage): boolean {
  const type = req.headers['content-type'] ?? '';
  const length = Number(req.headers['content-length'] ?? Number.NaN);
  return (
    type.startsWith('application/x-www-form-urlencoded') &&
    Number.isInteger(length) &&
    length <= MAX_FORM_BYTES
  );
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

export class FaultProxy {
  readonly rules: readonly FaultRule[];
  readonly counts: readonly RuleCount[];
  /** Every request, in arrival order, with the rule that fired on it. */
  readonly requests: ProxiedRequest[] = [];
  private readonly server: Server;
  private readonly target: URL;
  private readonly random: () => number;
  private readonly sockets = new Set<Socket>();

  constructor(target: string, rules: readonly FaultRule[], options: { seed?: number } = {}) {
    for (const r of rules) {
      if (r.probability !== undefined && !(r.probability >= 0 && r.probability <= 1))
        throw new RangeError(`probability ${r.probability} is not in [0, 1]`);
      if (r.everyNth !== undefined && !(Number.isInteger(r.everyNth) && r.everyNth >= 1))
        throw new RangeError(`everyNth ${r.everyNth} is not a positive whole number`);
      if (r.firstN !== undefined && !(Number.isInteger(r.firstN) && r.firstN >= 0))
        throw new RangeError(`firstN ${r.firstN} is not a whole number`);
    }
    this.target = new URL(target);
    this.rules = rules;
    this.counts = rules.map(() => ({ seen: 0, injected: 0 }));
    this.random = seededRandom(options.seed ?? 1);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => res.destroy());
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /** Starts listening on loopback; resolves to the URL clients should use. */
  listen(): Promise<string> {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        const a = this.server.address() as AddressInfo;
        resolve(`http://127.0.0.1:${a.port}`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  /** Faults injected by rule `index`. */
  injected(index: number): number {
    return this.counts[index]?.injected ?? 0;
  }

  /** Requests for `operation` that reached the proxy (faulted or not). */
  seen(operation: string): number {
    return this.requests.filter((r) => r.operation === operation).length;
  }

  private pick(info: RequestInfo): number | undefined {
    for (const [i, rule] of this.rules.entries()) {
      const m = rule.match;
      if (m.service !== undefined && m.service !== info.service) continue;
      if (m.operation !== undefined && m.operation !== info.operation) continue;
      if (m.method !== undefined && m.method.toUpperCase() !== info.method) continue;
      if (m.path !== undefined && !m.path.test(info.path)) continue;
      const count = this.counts[i]!;
      count.seen += 1;
      const fires =
        rule.firstN !== undefined
          ? count.seen <= rule.firstN
          : rule.everyNth !== undefined
            ? count.seen % rule.everyNth === 0
            : rule.probability !== undefined
              ? this.random() < rule.probability
              : true;
      if (fires) {
        count.injected += 1;
        return i;
      }
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://proxy');
    const service = serviceOf(req, url.searchParams);
    const parts = url.pathname
      .split('/')
      .filter((p) => p !== '')
      .map((p) => decodeURIComponent(p));
    let body: Buffer | undefined;
    let operation: string | undefined;
    if (service === 'ebs') operation = ebsOperation(method, parts);
    else if (service === 's3') operation = s3Operation(method, parts, url.searchParams, req);
    else if (service === 'kms') operation = String(req.headers['x-amz-target'] ?? '').split('.')[1];
    else {
      operation = url.searchParams.get('Action') ?? undefined;
      if (operation === undefined && isSmallForm(req)) {
        body = await readAll(req);
        operation = new URLSearchParams(body.toString('utf8')).get('Action') ?? undefined;
      }
    }
    const info: RequestInfo = { service, operation, method, path: url.pathname };
    const index = this.pick(info);
    this.requests.push({ ...info, rule: index });
    const rule = index === undefined ? undefined : this.rules[index];
    switch (rule?.fault) {
      case 'status':
        return this.answer(req, res, service, rule, body !== undefined);
      case 'reset-request':
        req.socket.destroy();
        return;
      case 'delay':
        await new Promise((r) => setTimeout(r, rule.delayMs ?? 1000));
        if (req.socket.destroyed) return;
        break;
      default:
        break;
    }
    this.forward(
      req,
      res,
      body,
      rule?.fault === 'reset-response' ? (rule.afterBytes ?? 0) : undefined,
    );
  }

  private answer(
    req: IncomingMessage,
    res: ServerResponse,
    service: string | undefined,
    rule: FaultRule,
    consumed: boolean,
  ): void {
    const status = rule.status ?? 503;
    const code = rule.errorCode ?? defaultErrorCode(service, status);
    const error = new AwsError(status, code, `Injected by the fault proxy (${code})`);
    const encoded = encodeAwsError(
      PROTOCOL[service ?? ''] ?? 'rest-xml',
      error,
      `fault-${Date.now()}`,
    );
    const bytes = Buffer.from(encoded.body ?? '');
    const send = () => {
      res.writeHead(encoded.status, {
        ...encoded.headers,
        'content-length': String(bytes.length),
        ...(rule.retryAfter === undefined ? {} : { 'retry-after': rule.retryAfter }),
      });
      res.end(bytes);
    };
    // Drain the request first: answering mid-upload would reset the client's write.
    if (consumed || req.complete) send();
    else {
      req.once('end', send);
      req.resume();
    }
  }

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer | undefined,
    resetAfter: number | undefined,
  ): void {
    const upstream = httpRequest(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        if (resetAfter === 0) {
          // The server did the work; not a byte of its answer reaches the client.
          up.destroy();
          req.socket.destroy();
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (resetAfter === undefined) {
          up.pipe(res);
          up.once('error', () => res.destroy());
          return;
        }
        // The headers and `resetAfter` bytes of the body, then the connection is cut.
        let left = resetAfter;
        const cut = () => {
          up.destroy();
          req.socket.destroy();
        };
        up.on('data', (chunk: Buffer) => {
          if (left <= 0) return;
          const piece = chunk.subarray(0, left);
          left -= piece.length;
          res.write(piece);
          if (left <= 0) setImmediate(cut);
        });
        up.once('end', cut);
      },
    );
    upstream.once('error', () => res.destroy());
    if (body !== undefined) upstream.end(body);
    else {
      req.pipe(upstream);
      req.once('error', () => upstream.destroy());
    }
  }
}
