/**
 * PutSnapshotBlock without the SDK's middleware stack: one signed HTTP PUT
 * per block. A publish sends thousands of blocks per placement, and the
 * SDK's per-request work (middleware, endpoint rules, serde, signing with a
 * fresh key) cost more CPU than the rest of the upload together. The
 * endpoint and the credentials still come from the SDK client, so a
 * placement reaches the same place with the same identity; the request is
 * the one the SDK sends (REST-JSON, UNSIGNED-PAYLOAD: the body's integrity
 * is x-amz-Checksum, which EBS checks).
 */
import { createHash, createHmac } from 'node:crypto';
import { type Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { type Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { EBSClient } from '@aws-sdk/client-ebs';

export interface PutBlockInput {
  readonly snapshotId: string;
  readonly blockIndex: number;
  /** BLOCK_SIZE bytes. */
  readonly data: Buffer;
  /** Base64 SHA-256 of `data`. */
  readonly checksum: string;
  readonly signal?: AbortSignal;
}

/** Sends one block; rejects with an SDK-shaped error (name, $metadata) that retry.ts classifies. */
export type PutBlock = (input: PutBlockInput) => Promise<void>;

export interface BlockPutOptions {
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
  /** Milliseconds a request may take (default 120 s). */
  readonly requestTimeoutMs?: number;
}

interface Identity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

/** Largest error body read (EBS error documents are a few hundred bytes). */
const MAX_ERROR_BODY = 64 * 1024;
/** Credentials are fetched again this long before they expire. */
const REFRESH_MS = 5 * 60_000;
const SERVICE = 'ebs';

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');
const hmac = (key: Buffer | string, s: string): Buffer =>
  createHmac('sha256', key).update(s).digest();

/** AWS's URI encoding of one path segment (RFC 3986 unreserved kept). */
function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** An error as the SDK would have thrown it, for retry.ts and aws-failure.ts. */
function serviceError(status: number, headers: IncomingMessage['headers'], body: string): Error {
  let code = String(headers['x-amzn-errortype'] ?? '').split(':')[0] ?? '';
  let message = '';
  try {
    const doc = JSON.parse(body) as Record<string, unknown>;
    if (code === '' && typeof doc.__type === 'string') code = doc.__type.split('#').pop() ?? '';
    if (code === '' && typeof doc.code === 'string') code = doc.code;
    const m = doc.message ?? doc.Message;
    if (typeof m === 'string') message = m.slice(0, 1000);
  } catch {
    message = body.slice(0, 200);
  }
  if (code === '') code = status >= 500 ? 'InternalServerException' : `Http${status}`;
  const e = new Error(message === '' ? `${code} (HTTP ${status})` : message);
  return Object.assign(e, {
    name: code,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: {
      httpStatusCode: status,
      requestId: String(headers['x-amzn-requestid'] ?? ''),
    },
  });
}

/**
 * A PutBlock over `ebs`'s endpoint and credentials, on the given keep-alive
 * agents. The signing key is derived once per day and region.
 */
export function blockPut(ebs: EBSClient, options: BlockPutOptions): PutBlock {
  const timeoutMs = options.requestTimeoutMs ?? 120_000;
  let endpoint: Promise<URL> | undefined;
  let identity: Identity | undefined;
  let signingKey:
    | { readonly scope: string; readonly secret: string; readonly key: Buffer }
    | undefined;

  const resolveEndpoint = async (): Promise<URL> => {
    const config = ebs.config;
    const region = await config.region();
    const custom = config.endpoint === undefined ? undefined : await config.endpoint();
    const url = config.endpointProvider({
      Region: region,
      UseFIPS: await config.useFipsEndpoint(),
      UseDualStack: await config.useDualstackEndpoint(),
      ...(custom === undefined
        ? {}
        : {
            Endpoint: `${custom.protocol}//${custom.hostname}${custom.port === undefined ? '' : `:${custom.port}`}${custom.path}`,
          }),
    }).url;
    return new URL(url.href);
  };

  const credentials = async (): Promise<Identity> => {
    const now = Date.now();
    const exp = identity?.expiration?.getTime();
    if (identity !== undefined && (exp === undefined || exp - REFRESH_MS > now)) return identity;
    identity = (await ebs.config.credentials()) as Identity;
    return identity;
  };

  return async (input: PutBlockInput): Promise<void> => {
    endpoint ??= resolveEndpoint().catch((error: unknown) => {
      endpoint = undefined;
      throw error;
    });
    const url = await endpoint;
    const region = await ebs.config.region();
    const id = await credentials();
    // The SDK client's clock correction (set when AWS said our clock was off) applies here too.
    const offset = (ebs.config as { systemClockOffset?: number }).systemClockOffset ?? 0;
    const amzDate = new Date(Date.now() + offset)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const day = amzDate.slice(0, 8);
    const scope = `${day}/${region}/${SERVICE}/aws4_request`;
    if (
      signingKey === undefined ||
      signingKey.scope !== scope ||
      signingKey.secret !== id.secretAccessKey
    ) {
      const kDate = hmac(`AWS4${id.secretAccessKey}`, day);
      const key = hmac(hmac(hmac(kDate, region), SERVICE), 'aws4_request');
      signingKey = { scope, secret: id.secretAccessKey, key };
    }
    const base = url.pathname.replace(/\/+$/, '');
    const path = `${base}/snapshots/${encodeSegment(input.snapshotId)}/blocks/${input.blockIndex}`;
    const host = url.host;
    const signed: Array<[string, string]> = [
      ['host', host],
      ['x-amz-checksum', input.checksum],
      ['x-amz-checksum-algorithm', 'SHA256'],
      ['x-amz-content-sha256', 'UNSIGNED-PAYLOAD'],
      ['x-amz-data-length', String(input.data.length)],
      ['x-amz-date', amzDate],
      ...(id.sessionToken === undefined
        ? []
        : ([['x-amz-security-token', id.sessionToken]] as Array<[string, string]>)),
    ];
    const names = signed.map(([k]) => k).join(';');
    const canonical = [
      'PUT',
      // Not S3: the canonical URI is the path encoded once more.
      path
        .split('/')
        .map((s) => encodeSegment(s))
        .join('/'),
      '',
      signed.map(([k, v]) => `${k}:${v}\n`).join(''),
      names,
      'UNSIGNED-PAYLOAD',
    ].join('\n');
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
    const signature = createHmac('sha256', signingKey.key).update(toSign).digest('hex');
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(input.data.length),
      authorization: `AWS4-HMAC-SHA256 Credential=${id.accessKeyId}/${scope}, SignedHeaders=${names}, Signature=${signature}`,
    };
    for (const [k, v] of signed) if (k !== 'host') headers[k] = v;
    const https = url.protocol === 'https:';
    await new Promise<void>((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)({
        method: 'PUT',
        hostname: url.hostname,
        port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
        path,
        headers,
        agent: https ? options.httpsAgent : options.httpAgent,
        ...(input.signal === undefined ? {} : { signal: input.signal }),
      });
      req.setTimeout(timeoutMs, () => {
        req.destroy(
          Object.assign(new Error(`PutSnapshotBlock took over ${timeoutMs} ms`), {
            code: 'ETIMEDOUT',
          }),
        );
      });
      req.once('error', reject);
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          res.resume();
          res.once('end', () => resolve());
          res.once('error', reject);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < MAX_ERROR_BODY) chunks.push(c.subarray(0, MAX_ERROR_BODY - size));
          size += c.length;
        });
        res.once('end', () =>
          reject(serviceError(status, res.headers, Buffer.concat(chunks).toString('utf8'))),
        );
        res.once('error', reject);
      });
      req.end(input.data);
    });
  };
}
