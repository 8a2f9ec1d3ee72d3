import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import { CloudEndpoint, type CloudEndpointOptions } from '../../src/cloud/index.js';
import { uriEscape } from '../../src/cloud/sigv4.js';
import { withTempDir } from './qemu.js';

export const TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

/** A clock the test can move: the server's now() is Date.now() + offset. */
export interface Clock {
  offset: number;
  readonly now: () => number;
}

export function movableClock(): Clock {
  const clock: Clock = {
    offset: 0,
    now: () => Date.now() + clock.offset,
  };
  return clock;
}

export interface CloudFixture {
  readonly url: string;
  readonly dir: string;
  readonly endpoint: CloudEndpoint;
  readonly clock: Clock;
  readonly log: string[];
}

/** Starts an endpoint on a free port in a temporary data directory (with `config` as config.json). */
export async function withCloud(
  fn: (cloud: CloudFixture) => Promise<void>,
  options: { config?: unknown; dir?: string; extra?: Partial<CloudEndpointOptions> } = {},
): Promise<void> {
  const run = async (dir: string) => {
    if (options.config !== undefined)
      await writeFile(join(dir, 'config.json'), JSON.stringify(options.config));
    const clock = movableClock();
    const log: string[] = [];
    const endpoint = await CloudEndpoint.open({
      dataDir: dir,
      port: 0,
      now: clock.now,
      log: (l) => log.push(l),
      ...options.extra,
    });
    const url = await endpoint.listen();
    try {
      await fn({ url, dir, endpoint, clock, log });
    } finally {
      await endpoint.close();
    }
  };
  if (options.dir !== undefined) await run(options.dir);
  else await withTempDir(run);
}

/** node:crypto SHA-256 (HMAC-SHA-256 given a secret) in the shape @smithy/signature-v4 wants. */
export class NodeSha256 {
  private hash: Hash | Hmac;
  private readonly secret: Buffer | undefined;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.secret =
      secret === undefined
        ? undefined
        : typeof secret === 'string'
          ? Buffer.from(secret, 'utf8')
          : ArrayBuffer.isView(secret)
            ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength)
            : Buffer.from(secret);
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  update(data: Uint8Array | string): void {
    this.hash.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export interface HandRequest {
  readonly method: string;
  readonly path: string;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

/** Sends a request built by hand (already signed or not) to the endpoint, the path as given. */
export function send(url: string, req: HandRequest): Promise<RawResponse> {
  const u = new URL(url);
  const query = Object.entries(req.query ?? {})
    .map(([k, v]) => `${uriEscape(k)}=${uriEscape(v)}`)
    .join('&');
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        method: req.method,
        path: query === '' ? req.path : `${req.path}?${query}`,
        headers: req.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

type Signable = Parameters<SignatureV4['sign']>[0];

/** Signs `req` with @smithy/signature-v4 for `service` (header form, or presigned with `expiresIn`). */
export async function signRequest(
  url: string,
  req: HandRequest,
  options: {
    service: string;
    region?: string;
    credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
    presignExpiresIn?: number;
    signingDate?: Date;
    /** Override the service's URI rule (S3: path signed as sent; others: encoded again). */
    uriEscapePath?: boolean;
  },
): Promise<HandRequest> {
  const u = new URL(url);
  const signer = new SignatureV4({
    service: options.service,
    region: options.region ?? 'us-east-1',
    credentials: options.credentials ?? TEST_CREDENTIALS,
    sha256: NodeSha256,
    uriEscapePath: options.uriEscapePath ?? options.service !== 's3',
  });
  const request: Signable = {
    method: req.method,
    protocol: 'http:',
    hostname: u.hostname,
    port: Number(u.port),
    path: req.path,
    query: { ...req.query },
    headers: { host: u.host, ...req.headers },
    ...(req.body === undefined ? {} : { body: req.body }),
  } as Signable;
  const signed =
    options.presignExpiresIn === undefined
      ? await signer.sign(request, options.signingDate ? { signingDate: options.signingDate } : {})
      : await signer.presign(request, {
          expiresIn: options.presignExpiresIn,
          ...(options.signingDate ? { signingDate: options.signingDate } : {}),
        });
  return {
    method: signed.method,
    path: signed.path,
    query: signed.query as Record<string, string>,
    headers: signed.headers as Record<string, string>,
    ...(req.body === undefined ? {} : { body: req.body }),
  };
}
