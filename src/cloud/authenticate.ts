/**
 * SigV4 verification of one request: the Authorization header form and the
 * presigned query form. Failures are AuthFailures of a kind; auth-errors.ts
 * turns a kind into each protocol's code and status.
 */
import { timingSafeEqual } from 'node:crypto';
import type { RequestBody } from './request-body.js';
import {
  ALGORITHM,
  canonicalHeaders,
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  credentialScope,
  EMPTY_SHA256,
  formatAmzDate,
  parseAmzDate,
  signatureHex,
  signingKey,
  stringToSign,
  UNSIGNED_PAYLOAD,
} from './sigv4.js';

export type AuthFailureKind =
  | 'missing'
  | 'incomplete'
  | 'unknown-service'
  | 'bad-region'
  | 'unknown-key'
  | 'bad-signature'
  | 'skewed'
  | 'presign-expired'
  | 'token-invalid'
  | 'token-expired'
  | 'content-sha-mismatch'
  | 'too-large';

export class AuthFailure extends Error {
  override readonly name = 'AuthFailure';
  readonly kind: AuthFailureKind;

  constructor(kind: AuthFailureKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/** How far a request's date may be from the server's clock. */
export const MAX_SKEW_MS = 15 * 60 * 1000;
/** The longest a presigned URL may live (a week). */
export const MAX_PRESIGN_SECONDS = 604_800;

/** The request as it arrived, before anything is decoded. */
export interface WireRequest {
  readonly method: string;
  /** The path as sent, still percent-encoded. */
  readonly rawPath: string;
  /** The decoded query pairs, in the order sent. */
  readonly queryPairs: ReadonlyArray<readonly [string, string]>;
  /** Node's rawHeaders: name, value, name, value… */
  readonly rawHeaders: readonly string[];
  readonly header: (name: string) => string | undefined;
}

export interface ParsedAuth {
  readonly presigned: boolean;
  readonly accessKeyId: string;
  readonly scopeDate: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
  readonly amzDate: string;
  /** The request's time, epoch milliseconds. */
  readonly time: number;
  readonly expiresSeconds?: number;
  readonly securityToken?: string;
}

const INCOMPLETE = (what: string) => new AuthFailure('incomplete', what);

function queryValue(req: WireRequest, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of req.queryPairs) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/** Is there any SigV4 material at all (so that its scope names the service)? */
export function hasAuth(req: WireRequest): boolean {
  return (
    req.header('authorization') !== undefined || queryValue(req, 'X-Amz-Algorithm') !== undefined
  );
}

function parseCredential(
  credential: string,
): Pick<ParsedAuth, 'accessKeyId' | 'scopeDate' | 'region' | 'service'> {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1]!))
    throw INCOMPLETE(
      `Credential should be ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request, not '${credential}'.`,
    );
  return { accessKeyId: parts[0]!, scopeDate: parts[1]!, region: parts[2]!, service: parts[3]! };
}

function parseSignedHeaders(text: string): string[] {
  const list = text.split(';');
  if (list.some((h) => h === '' || h !== h.toLowerCase()))
    throw INCOMPLETE(`SignedHeaders should be lowercase names joined by ';', not '${text}'.`);
  if (!list.includes('host')) throw INCOMPLETE("SignedHeaders must include 'host'.");
  return list;
}

function isoFromHttpDate(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : formatAmzDate(ms);
}

/** Reads the SigV4 fields of a request (no secret needed yet). */
export function parseAuth(req: WireRequest): ParsedAuth {
  const header = req.header('authorization');
  if (header !== undefined) {
    const space = header.indexOf(' ');
    const algorithm = space < 0 ? header : header.slice(0, space);
    if (algorithm !== ALGORITHM)
      throw INCOMPLETE(`Unsupported authorization algorithm '${algorithm}': use ${ALGORITHM}.`);
    const fields = new Map<string, string>();
    for (const part of header.slice(space + 1).split(',')) {
      const item = part.trim();
      const eq = item.indexOf('=');
      if (eq < 0)
        throw INCOMPLETE(
          `'${item}' not a valid key=value pair (missing equal-sign) in Authorization header.`,
        );
      fields.set(item.slice(0, eq), item.slice(eq + 1));
    }
    const credential = fields.get('Credential');
    const signed = fields.get('SignedHeaders');
    const signature = fields.get('Signature');
    if (credential === undefined || signed === undefined || signature === undefined)
      throw INCOMPLETE(
        'Authorization header requires Credential, SignedHeaders and Signature parameters.',
      );
    const scope = parseCredential(credential);
    const amzDate = req.header('x-amz-date') ?? isoFromHttpDate(req.header('date'));
    if (amzDate === undefined)
      throw INCOMPLETE('Authorization requires a valid X-Amz-Date or Date header.');
    const time = parseAmzDate(amzDate);
    if (Number.isNaN(time)) throw INCOMPLETE(`X-Amz-Date '${amzDate}' is not YYYYMMDDTHHMMSSZ.`);
    const token = req.header('x-amz-security-token');
    return {
      presigned: false,
      ...scope,
      signedHeaders: parseSignedHeaders(signed),
      signature: signature.toLowerCase(),
      amzDate,
      time,
      ...(token === undefined ? {} : { securityToken: token }),
    };
  }
  const algorithm = queryValue(req, 'X-Amz-Algorithm');
  if (algorithm === undefined)
    throw new AuthFailure('missing', 'Request is missing Authentication Token');
  if (algorithm !== ALGORITHM)
    throw INCOMPLETE(`X-Amz-Algorithm only supports "${ALGORITHM}", not "${algorithm}".`);
  const credential = queryValue(req, 'X-Amz-Credential');
  const amzDate = queryValue(req, 'X-Amz-Date');
  const expires = queryValue(req, 'X-Amz-Expires');
  const signed = queryValue(req, 'X-Amz-SignedHeaders');
  const signature = queryValue(req, 'X-Amz-Signature');
  if (
    credential === undefined ||
    amzDate === undefined ||
    expires === undefined ||
    signed === undefined ||
    signature === undefined
  )
    throw INCOMPLETE(
      'Query-string authentication requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  const time = parseAmzDate(amzDate);
  if (Number.isNaN(time)) throw INCOMPLETE(`X-Amz-Date '${amzDate}' is not YYYYMMDDTHHMMSSZ.`);
  const expiresSeconds = /^\d{1,7}$/.test(expires) ? Number(expires) : Number.NaN;
  if (!(expiresSeconds >= 1))
    throw INCOMPLETE('X-Amz-Expires should be a number of seconds from 1 on.');
  if (expiresSeconds > MAX_PRESIGN_SECONDS)
    throw INCOMPLETE(
      `X-Amz-Expires must be less than a week (in seconds) that is ${MAX_PRESIGN_SECONDS}.`,
    );
  const token = queryValue(req, 'X-Amz-Security-Token');
  return {
    presigned: true,
    ...parseCredential(credential),
    signedHeaders: parseSignedHeaders(signed),
    signature: signature.toLowerCase(),
    amzDate,
    time,
    expiresSeconds,
    ...(token === undefined ? {} : { securityToken: token }),
  };
}

/** Refuses a request whose date is too far from `now`, or a presigned URL past its expiry. */
export function checkTime(auth: ParsedAuth, now: number): void {
  if (auth.scopeDate !== auth.amzDate.slice(0, 8))
    throw new AuthFailure(
      'bad-signature',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.scopeDate}' != '${auth.amzDate.slice(0, 8)}'.`,
    );
  if (auth.time > now + MAX_SKEW_MS)
    throw new AuthFailure(
      'skewed',
      `Signature not yet current: ${auth.amzDate} is still later than ${formatAmzDate(now + MAX_SKEW_MS)} (${formatAmzDate(now)} + 15 min.)`,
    );
  if (auth.presigned) {
    if (now > auth.time + (auth.expiresSeconds ?? 0) * 1000)
      throw new AuthFailure('presign-expired', 'Request has expired');
    return;
  }
  if (auth.time < now - MAX_SKEW_MS)
    throw new AuthFailure(
      'skewed',
      `Signature expired: ${auth.amzDate} is now earlier than ${formatAmzDate(now - MAX_SKEW_MS)} (${formatAmzDate(now)} - 15 min.)`,
    );
}

const HEX64 = /^[0-9a-f]{64}$/;

/** The string the request's signature covers, for one candidate payload hash. */
function expectedSignature(
  req: WireRequest,
  auth: ParsedAuth,
  key: Buffer,
  headers: string,
  payloadHash: string,
): string {
  const canonical = canonicalRequest({
    method: req.method,
    uri: canonicalUri(req.rawPath, auth.service),
    query: canonicalQuery(req.queryPairs, auth.presigned),
    headers,
    signedHeaders: auth.signedHeaders,
    payloadHash,
  });
  const scope = credentialScope(auth.scopeDate, auth.region, auth.service);
  return signatureHex(key, stringToSign(auth.amzDate, scope, canonical));
}

/** Constant-time comparison of two hex signatures. */
export function sameSignature(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

const BAD_SIGNATURE =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

/** Which of the candidate payload hashes the request's signature covers (or a failure). */
function matchSignature(
  req: WireRequest,
  auth: ParsedAuth,
  key: Buffer,
  candidates: readonly string[],
): string {
  const headers = canonicalHeaders(req.rawHeaders, auth.signedHeaders);
  if (headers === null)
    throw new AuthFailure(
      'bad-signature',
      'The request signature we calculated does not match the signature you provided: a signed header is missing from the request.',
    );
  const matched = candidates.find((payloadHash) =>
    sameSignature(expectedSignature(req, auth, key, headers, payloadHash), auth.signature),
  );
  if (matched === undefined) throw new AuthFailure('bad-signature', BAD_SIGNATURE);
  return matched;
}

function declaredPayloadHash(req: WireRequest, auth: ParsedAuth): string | undefined {
  return auth.presigned
    ? queryValue(req, 'X-Amz-Content-Sha256')
    : req.header('x-amz-content-sha256');
}

/** Signing keys derived lately (a key is a day's, per region and service), at most KEYS_KEPT. */
const derivedKeys = new Map<string, Buffer>();
const KEYS_KEPT = 256;

/**
 * The SigV4 signing key of a scope, derived once per secret, day, region and
 * service (four HMACs), not once per request.
 */
function scopedKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${date}\n${region}\n${service}\n${secret}`;
  let key = derivedKeys.get(id);
  if (key === undefined) {
    if (derivedKeys.size >= KEYS_KEPT) derivedKeys.clear();
    key = signingKey(secret, date, region, service);
    derivedKeys.set(id, key);
  }
  return key;
}

/**
 * Recomputes the signature with `secret` and compares it in constant time.
 * The payload hash is x-amz-content-sha256 when sent (UNSIGNED-PAYLOAD and
 * the STREAMING-… values are signed as they are), else the SHA-256 of the
 * body; a presigned URL without one may have signed either UNSIGNED-PAYLOAD
 * (S3, botocore) or the empty body's hash (other services, the JS SDK).
 * A declared hash that the body does not match is refused after that.
 * `body` hashes the body when asked, once: an UNSIGNED-PAYLOAD request
 * leaves it unhashed.
 */
export function verifySignature(
  req: WireRequest,
  auth: ParsedAuth,
  secret: string,
  body: RequestBody,
): void {
  const declared = declaredPayloadHash(req, auth);
  const candidates =
    declared !== undefined
      ? [declared]
      : auth.presigned
        ? [UNSIGNED_PAYLOAD, body.sha256Hex()]
        : [body.sha256Hex()];
  matchSignature(
    req,
    auth,
    scopedKey(secret, auth.scopeDate, auth.region, auth.service),
    candidates,
  );
  if (declared !== undefined && HEX64.test(declared) && declared !== body.sha256Hex())
    throw new AuthFailure(
      'content-sha-mismatch',
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
}

/** What a streamed body must be checked against as it arrives. */
export type PayloadCheck =
  /** The body's SHA-256, known only at its end. */
  | { readonly kind: 'sha256'; readonly hex: string }
  | { readonly kind: 'unsigned' }
  /** aws-chunked framing; signed: every chunk carries a signature chained from the seed. */
  | {
      readonly kind: 'chunked';
      readonly trailer: boolean;
      readonly signing?: ChunkSigning;
    };

/** What chunk signatures are computed from (SigV4 streaming, the seed being the header's signature). */
export interface ChunkSigning {
  readonly key: Buffer;
  readonly amzDate: string;
  readonly scope: string;
  readonly seed: string;
}

export const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
export const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';

/**
 * Verifies the signature of a request whose body has not been read (a
 * streaming service): the signature covers the declared payload hash, and
 * the returned check is what the body must then satisfy while it streams.
 */
export function verifyStreamingSignature(
  req: WireRequest,
  auth: ParsedAuth,
  secret: string,
): PayloadCheck {
  const declared = declaredPayloadHash(req, auth);
  if (declared === undefined && !auth.presigned)
    throw new AuthFailure(
      'incomplete',
      'Missing required header for this request: x-amz-content-sha256',
    );
  const key = scopedKey(secret, auth.scopeDate, auth.region, auth.service);
  const matched = matchSignature(
    req,
    auth,
    key,
    declared !== undefined ? [declared] : [UNSIGNED_PAYLOAD, EMPTY_SHA256],
  );
  if (HEX64.test(matched)) return { kind: 'sha256', hex: matched };
  switch (matched) {
    case UNSIGNED_PAYLOAD:
      return { kind: 'unsigned' };
    case STREAMING_UNSIGNED_TRAILER:
      return { kind: 'chunked', trailer: true };
    case STREAMING_SIGNED:
    case STREAMING_SIGNED_TRAILER:
      if (auth.presigned) break;
      return {
        kind: 'chunked',
        trailer: matched === STREAMING_SIGNED_TRAILER,
        signing: {
          key,
          amzDate: auth.amzDate,
          scope: credentialScope(auth.scopeDate, auth.region, auth.service),
          seed: auth.signature,
        },
      };
  }
  throw new AuthFailure(
    'incomplete',
    'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.',
  );
}
