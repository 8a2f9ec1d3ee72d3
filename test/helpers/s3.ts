import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';
import { TEST_CREDENTIALS } from './cloud.js';

export type Credentials = { accessKeyId: string; secretAccessKey: string };

/** An SDK v3 S3 client for the endpoint: path style, no retries (errors surface at once). */
export function s3Client(
  url: string,
  credentials: Credentials = TEST_CREDENTIALS,
  region = 'us-east-1',
): S3Client {
  return new S3Client({
    endpoint: url,
    region,
    credentials,
    forcePathStyle: true,
    maxAttempts: 1,
  });
}

/** Another account of the endpoint, for config.json. */
export const OTHER_ACCOUNT = '222222222222';
export const OTHER_KEYS: Credentials = {
  accessKeyId: 'AKIAOTHERS3000001',
  secretAccessKey: 'other-s3-secret',
};
export const TWO_ACCOUNTS = { accounts: [{ id: OTHER_ACCOUNT, ...OTHER_KEYS }] };

export const md5hex = (data: Buffer | string) => createHash('md5').update(data).digest('hex');
export const md5b64 = (data: Buffer | string) => createHash('md5').update(data).digest('base64');
export const sha256hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Deterministic, incompressible-looking bytes. */
export function pattern(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i - (i + 4 > size ? i + 4 - size : 0));
  }
  return out;
}

/** Error fields the SDK v3 exposes, for assert.rejects. */
export function s3Error(name: string, status?: number) {
  return (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
    if (e.name !== name) throw new Error(`expected ${name}, got ${e.name}: ${e.message}`);
    if (status !== undefined && e.$metadata?.httpStatusCode !== status)
      throw new Error(`expected HTTP ${status}, got ${e.$metadata?.httpStatusCode}`);
    return true;
  };
}

/**
 * An aws-chunked body signed as STREAMING-AWS4-HMAC-SHA256-PAYLOAD: each
 * chunk's signature chained from `seed` (computed here, independently of the
 * server's code).
 */
export function signedChunks(
  data: Buffer,
  chunkSize: number,
  signing: { secret: string; date: string; amzDate: string; region: string; seed: string },
  trailer?: { readonly name: string; readonly value: string },
): Buffer {
  const hmac = (key: Buffer | string, text: string) =>
    createHmac('sha256', key).update(text).digest();
  let key = hmac(`AWS4${signing.secret}`, signing.date);
  key = hmac(key, signing.region);
  key = hmac(key, 's3');
  key = hmac(key, 'aws4_request');
  const scope = `${signing.date}/${signing.region}/s3/aws4_request`;
  const empty = sha256hex('');
  const parts: Buffer[] = [];
  let previous = signing.seed;
  const chunk = (piece: Buffer) => {
    const toSign = [
      'AWS4-HMAC-SHA256-PAYLOAD',
      signing.amzDate,
      scope,
      previous,
      empty,
      sha256hex(piece),
    ].join('\n');
    const sig = hmac(key, toSign).toString('hex');
    previous = sig;
    parts.push(Buffer.from(`${piece.length.toString(16)};chunk-signature=${sig}\r\n`), piece);
    if (piece.length > 0) parts.push(Buffer.from('\r\n'));
  };
  for (let i = 0; i < data.length; i += chunkSize) chunk(data.subarray(i, i + chunkSize));
  chunk(Buffer.alloc(0));
  if (trailer !== undefined) {
    // The trailer's signature chains from the final chunk's.
    const line = `${trailer.name}:${trailer.value}\n`;
    const toSign = [
      'AWS4-HMAC-SHA256-TRAILER',
      signing.amzDate,
      scope,
      previous,
      sha256hex(line),
    ].join('\n');
    const sig = hmac(key, toSign).toString('hex');
    parts.push(
      Buffer.from(`${trailer.name}:${trailer.value}\r\nx-amz-trailer-signature:${sig}\r\n`),
    );
  }
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

/** Sends a request with a binary body as given (no signing, no changes). */
export function sendRaw(
  url: string,
  req: { method: string; path: string; headers: Record<string, string>; body: Buffer },
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      { host: u.hostname, port: u.port, method: req.method, path: req.path, headers: req.headers },
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
