/**
 * Keystone v3 auth for the image service: POST /v3/auth/tokens with a
 * password, an application credential or a token; the token comes back in
 * X-Subject-Token, its expiry and the catalog in the body. The session
 * keeps the token until shortly before it expires (or until invalidate(),
 * after a 401 from the image service), then authenticates again; the image
 * endpoint is found once, in the first token's catalog, by type `image`,
 * region and interface.
 *
 * Everything Keystone answers is checked: the body is capped, the token
 * header and the catalog are validated, and no secret (password,
 * application credential secret, token) appears in an error's message or
 * details, even where Keystone's own message would quote it.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../../errors/index.js';
import { backoffMs, CONNECTION_CODES, type RetryPolicy } from '../retry.js';
import { type ImageSession, unauthenticatedSession } from './image-session.js';
import type { NamedRef, OpenStackCloud, OpenStackInterface } from './openstack-cloud.js';

/** A token response with a catalog is some KiB; a big cloud's is under 1 MiB. */
export const MAX_KEYSTONE_BODY = 4 * 1024 * 1024;
/** Fernet tokens are under 300 characters; PKI tokens of old clouds were a few KiB. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const MAX_SERVICES = 1000;
const MAX_ENDPOINTS = 10_000;

/** Token requests are safe to repeat: a lost answer costs one unused token. */
export const KEYSTONE_RETRY_POLICY: RetryPolicy = { maxAttempts: 4, baseMs: 250, capMs: 4000 };
const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

export interface OpenImageSessionOptions {
  /** The region whose image endpoint is used (default: the cloud's region_name). */
  readonly region?: string;
  /** Which endpoint of the catalog (default: the cloud's interface, public). */
  readonly interface?: OpenStackInterface;
  /** Cancels the first authentication. */
  readonly signal?: AbortSignal;
  /** Authenticate again this long before the token expires (default 2 minutes; at most half its life). */
  readonly refreshMarginMs?: number;
  /** Per request to Keystone (default 30 s). */
  readonly timeoutMs?: number;
  readonly retry?: RetryPolicy;
  /** The clock, in ms since the epoch (tests move it forward). */
  readonly now?: () => number;
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

interface Transport {
  readonly ca?: Buffer;
  readonly verify: boolean;
  readonly timeoutMs: number;
}

function aborted(action: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_ABORTED', `Cannot ${action}: the operation was aborted`, {
    ...(cause === undefined ? {} : { cause }),
  });
}

/** What a request is destroyed with when the answer passes MAX_KEYSTONE_BODY. */
class BodyTooLarge extends Error {}

/** One POST, its answer read up to MAX_KEYSTONE_BODY. */
function post(url: URL, body: string, t: Transport, signal?: AbortSignal): Promise<Reply> {
  return new Promise((resolvePromise, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(
      url,
      {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json',
          'Content-Length': Buffer.byteLength(body),
        },
        timeout: t.timeoutMs,
        ...(signal === undefined ? {} : { signal }),
        ...(url.protocol === 'https:'
          ? { rejectUnauthorized: t.verify, ...(t.ca === undefined ? {} : { ca: t.ca }) }
          : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_KEYSTONE_BODY) {
            req.destroy(new BodyTooLarge());
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(
        Object.assign(new Error('Keystone did not answer in time'), { code: 'ETIMEDOUT' }),
      ),
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The JSON body of `/v3/auth/tokens` for the cloud's auth method. */
function authBody(cloud: Exclude<OpenStackCloud, { authType: 'none' }>): unknown {
  const ref = (r: NamedRef) =>
    'id' in r ? { id: r.id } : { name: r.name, domain: { ...r.domain } };
  const scope = (p: NamedRef | undefined) =>
    p === undefined ? {} : { scope: { project: ref(p) } };
  switch (cloud.authType) {
    case 'password':
      return {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { ...ref(cloud.auth.user), password: cloud.auth.password } },
          },
          ...scope(cloud.auth.project),
        },
      };
    case 'token':
      return {
        auth: {
          identity: { methods: ['token'], token: { id: cloud.auth.token } },
          ...scope(cloud.auth.project),
        },
      };
    case 'v3applicationcredential': {
      const c = cloud.auth.credential;
      // An application credential is scoped by itself: no scope in the request.
      return {
        auth: {
          identity: {
            methods: ['application_credential'],
            application_credential:
              'id' in c
                ? { id: c.id, secret: cloud.auth.secret }
                : { name: c.name, user: ref(c.user), secret: cloud.auth.secret },
          },
        },
      };
    }
  }
}

/** Which credentials, in words, without the secret. */
function describeAuth(cloud: Exclude<OpenStackCloud, { authType: 'none' }>): string {
  const who = (r: NamedRef) => ('id' in r ? `user id ${r.id}` : `user "${r.name}"`);
  switch (cloud.authType) {
    case 'password':
      return `the password of ${who(cloud.auth.user)}`;
    case 'token':
      return 'the token';
    case 'v3applicationcredential': {
      const c = cloud.auth.credential;
      return 'id' in c
        ? `application credential ${c.id}`
        : `application credential "${c.name}" of ${who(c.user)}`;
    }
  }
}

function secretsOf(cloud: Exclude<OpenStackCloud, { authType: 'none' }>): string[] {
  switch (cloud.authType) {
    case 'password':
      return [cloud.auth.password];
    case 'token':
      return [cloud.auth.token];
    case 'v3applicationcredential':
      return [cloud.auth.secret];
  }
}

/** Keystone's own error message, short, printable, with any secret blanked. */
function keystoneMessage(body: Buffer, secrets: readonly string[]): string {
  let message = '';
  try {
    const parsed = JSON.parse(body.subarray(0, 64 * 1024).toString('utf8')) as {
      error?: { message?: unknown };
    };
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    message = '';
  }
  for (const s of secrets) if (s.length > 0) message = message.split(s).join('***');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  return message.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 300);
}

interface IssuedToken {
  readonly token: string;
  /** By the local clock (`now`). */
  readonly expiresAt: number;
  readonly issuedAt: number;
  readonly projectId: string | null;
  readonly catalog: unknown;
}

function badResponse(url: string, reason: string, details: Record<string, string | number> = {}) {
  return new FerryError(
    'FERRY_KEYSTONE_RESPONSE',
    `Cannot use Keystone's answer from ${url}: ${reason}`,
    {
      details: { url, ...details },
    },
  );
}

function parseTime(value: unknown): number | null {
  if (typeof value !== 'string' || value.length > 64) return null;
  const t = Date.parse(value);
  return Number.isFinite(t) ? t : null;
}

/** Checks a 2xx answer of /auth/tokens and takes what the session needs. */
function parseIssued(reply: Reply, url: string, now: number): IssuedToken {
  const header = reply.headers['x-subject-token'];
  if (typeof header !== 'string' || header.length === 0)
    throw badResponse(url, 'no X-Subject-Token header');
  if (header.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(header))
    throw badResponse(url, 'the X-Subject-Token header is not a token');
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.body.toString('utf8'));
  } catch (error) {
    throw new FerryError(
      'FERRY_KEYSTONE_RESPONSE',
      `Cannot use Keystone's answer from ${url}: the body is not JSON`,
      {
        details: { url },
        cause: error,
      },
    );
  }
  const token = (parsed as { token?: unknown } | null)?.token;
  if (typeof token !== 'object' || token === null) throw badResponse(url, 'the body has no token');
  const t = token as {
    expires_at?: unknown;
    issued_at?: unknown;
    project?: unknown;
    catalog?: unknown;
  };
  const expires = parseTime(t.expires_at);
  if (expires === null) throw badResponse(url, 'the token has no valid expires_at');
  // The token's life by Keystone's clock, counted from now by ours: a clock
  // that differs from Keystone's does not shorten or stretch it.
  const issued = parseTime(t.issued_at);
  const life = issued === null ? expires - now : expires - issued;
  if (life <= 0) throw badResponse(url, 'the token has already expired');
  const issuedAt = now;
  const expiresAt = now + life;
  let projectId: string | null = null;
  if (t.project !== undefined && t.project !== null) {
    const id = (t.project as { id?: unknown }).id;
    if (typeof id !== 'string' || id.length === 0 || id.length > 255)
      throw badResponse(url, 'the token names a project without a valid id');
    projectId = id;
  }
  return { token: header, expiresAt, issuedAt, projectId, catalog: t.catalog };
}

interface Endpoint {
  readonly region: string | null;
  readonly interface: string;
  readonly url: string;
}

/** The image service's endpoints of a token's catalog, checked. */
function imageEndpoints(catalog: unknown, url: string): { endpoints: Endpoint[]; types: string[] } {
  if (!Array.isArray(catalog)) throw badResponse(url, 'the token has no catalog');
  if (catalog.length > MAX_SERVICES)
    throw badResponse(url, `the catalog has more than ${MAX_SERVICES} services`);
  const endpoints: Endpoint[] = [];
  const types: string[] = [];
  let count = 0;
  for (const service of catalog as unknown[]) {
    const s = service as { type?: unknown; endpoints?: unknown } | null;
    if (typeof s !== 'object' || s === null || typeof s.type !== 'string' || s.type.length > 255)
      throw badResponse(url, 'a catalog service has no type');
    types.push(s.type);
    if (s.type !== 'image') continue;
    if (!Array.isArray(s.endpoints))
      throw badResponse(url, 'the image service has no endpoint list');
    count += s.endpoints.length;
    if (count > MAX_ENDPOINTS)
      throw badResponse(url, `the catalog has more than ${MAX_ENDPOINTS} image endpoints`);
    for (const endpoint of s.endpoints as unknown[]) {
      const e = endpoint as {
        interface?: unknown;
        region_id?: unknown;
        region?: unknown;
        url?: unknown;
      };
      if (
        typeof e !== 'object' ||
        e === null ||
        typeof e.interface !== 'string' ||
        typeof e.url !== 'string'
      )
        throw badResponse(url, 'an image endpoint has no interface or URL');
      const region =
        typeof e.region_id === 'string'
          ? e.region_id
          : typeof e.region === 'string'
            ? e.region
            : null;
      endpoints.push({ region, interface: e.interface, url: e.url });
    }
  }
  return { endpoints, types };
}

/** An image URL without its version path (Glance's catalog entries may or may not have one). */
export function imageBaseUrl(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.username !== '' ||
    url.password !== ''
  )
    return null;
  url.search = '';
  url.hash = '';
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/v\d+(\.\d+)?$/, '');
  return url.toString().replace(/\/+$/, '');
}

/**
 * The image endpoint of `catalog` for `region` (null: the only region that
 * has one) and `iface`. FERRY_OPENSTACK_NO_ENDPOINT lists what there is.
 */
export function findImageEndpoint(
  catalog: unknown,
  region: string | null,
  iface: OpenStackInterface,
  keystoneUrl = 'Keystone',
): string {
  const { endpoints, types } = imageEndpoints(catalog, keystoneUrl);
  const fail = (reason: string, hint?: string) =>
    new FerryError('FERRY_OPENSTACK_NO_ENDPOINT', `Cannot find the image endpoint: ${reason}`, {
      details: { region, interface: iface },
      ...(hint === undefined ? {} : { hint }),
    });
  const have = (list: readonly Endpoint[]) =>
    list
      .slice(0, 20)
      .map((e) => `${e.region ?? '(no region)'} ${e.interface}`)
      .join(', ');
  if (endpoints.length === 0)
    throw fail(
      `the catalog has no image service (it has: ${[...new Set(types)].slice(0, 30).join(', ') || 'nothing'})`,
      'Give the image endpoint explicitly, or ask the cloud operator.',
    );
  const inRegion = region === null ? endpoints : endpoints.filter((e) => e.region === region);
  if (inRegion.length === 0)
    throw fail(`no image endpoint in region "${region}" (the catalog has: ${have(endpoints)})`);
  const matching = inRegion.filter((e) => e.interface === iface);
  if (matching.length === 0)
    throw fail(
      `no ${iface} image endpoint${region === null ? '' : ` in region "${region}"`} (the catalog has: ${have(endpoints)})`,
    );
  const regions = new Set(matching.map((e) => e.region));
  if (regions.size > 1)
    throw fail(
      `several regions have a ${iface} image endpoint (${[...regions].join(', ')}) and none was named`,
      "Name the region (region_name in clouds.yaml, or the target's regions).",
    );
  const base = imageBaseUrl(matching[0]!.url);
  if (base === null) throw badResponse(keystoneUrl, 'the image endpoint is not an http(s) URL');
  return base;
}

async function readCa(path: string): Promise<Buffer> {
  try {
    const ca = await readFile(path);
    if (ca.length > 1024 * 1024) throw new Error('over 1 MiB');
    return ca;
  } catch (error) {
    throw new FerryError(
      'FERRY_IO',
      `Cannot read the CA certificates ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      {
        details: { path },
        cause: error,
      },
    );
  }
}

/** Races `promise` against `signal` (the promise itself goes on for the others waiting on it). */
function withSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  action: string,
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(aborted(action, signal.reason));
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () => reject(aborted(action, signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolvePromise(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** One cloud's Keystone token, shared by the image sessions of its regions. */
export interface KeystoneAuth {
  /** The project the token is scoped to (null: unscoped). */
  readonly projectId: string | null;
  /** The cached token, or a new one when it expires soon or was invalidated. */
  token(signal?: AbortSignal): Promise<string>;
  invalidate(): void;
  /**
   * The image session of one region and interface (defaults: the cloud's),
   * found in the first token's catalog (or the cloud's explicit endpoint).
   * Its token() and invalidate() are this auth's.
   */
  imageSession(where?: {
    readonly region?: string;
    readonly interface?: OpenStackInterface;
  }): ImageSession;
}

export type KeystoneAuthOptions = Omit<OpenImageSessionOptions, 'region' | 'interface'>;

function endpointOverride(raw: string): string {
  const base = imageBaseUrl(raw);
  if (base === null)
    throw new FerryError(
      'FERRY_USAGE',
      'Cannot open an image session: the endpoint is not an http(s) URL',
    );
  return base;
}

/**
 * Authenticates once with Keystone and returns what every region of the
 * cloud shares: one token (renewed shortly before it expires, or after
 * invalidate()) and the catalog. Errors: FERRY_OPENSTACK_AUTH (401; 404 to
 * a token Keystone cannot read), FERRY_KEYSTONE_UNREACHABLE,
 * FERRY_KEYSTONE_RESPONSE, FERRY_ABORTED, FERRY_IO (the cacert file);
 * imageSession() throws FERRY_OPENSTACK_NO_ENDPOINT.
 */
export async function openKeystoneAuth(
  cloud: Exclude<OpenStackCloud, { authType: 'none' }>,
  options: KeystoneAuthOptions = {},
): Promise<KeystoneAuth> {
  const c = cloud;
  const now = options.now ?? Date.now;
  const policy = options.retry ?? KEYSTONE_RETRY_POLICY;
  const margin = options.refreshMarginMs ?? 120_000;
  const transport: Transport = {
    verify: c.verify,
    timeoutMs: options.timeoutMs ?? 30_000,
    ...(c.cacert === undefined ? {} : { ca: await readCa(c.cacert) }),
  };
  const tokensUrl = new URL(`${c.auth.authUrl}/auth/tokens`);
  const where = tokensUrl.toString();
  const body = JSON.stringify(authBody(c));
  const secrets = secretsOf(c);
  const action = `authenticate with Keystone at ${c.auth.authUrl}`;

  const issue = async (signal?: AbortSignal): Promise<IssuedToken> => {
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw aborted(action, signal.reason);
      let reply: Reply;
      try {
        reply = await post(tokensUrl, body, transport, signal);
      } catch (error) {
        if (signal?.aborted) throw aborted(action, error);
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (error instanceof BodyTooLarge)
          throw badResponse(where, `the body is over ${MAX_KEYSTONE_BODY} bytes`);
        if (attempt < policy.maxAttempts && (CONNECTION_CODES.has(code) || code === 'ENOTFOUND')) {
          await sleep(
            backoffMs(policy, attempt, 'connection', Math.random),
            undefined,
            signal ? { signal } : {},
          ).catch((e: unknown) => {
            throw aborted(action, e);
          });
          continue;
        }
        throw new FerryError(
          'FERRY_KEYSTONE_UNREACHABLE',
          `Cannot ${action}: ${code || (error as Error).message}`,
          {
            details: { url: where, code, attempts: attempt },
            cause: error,
            hint: 'Check auth_url and that Keystone is up and reachable from here.',
          },
        );
      }
      if (reply.status === 200 || reply.status === 201) return parseIssued(reply, where, now());
      // Keystone answers 404 (TokenNotFound) to a token it cannot read.
      if (reply.status === 401 || (reply.status === 404 && c.authType === 'token'))
        throw new FerryError(
          'FERRY_OPENSTACK_AUTH',
          `Cannot ${action}: Keystone refused ${describeAuth(c)}`,
          {
            details: { url: where, authType: c.authType, status: reply.status },
            hint:
              c.authType === 'token'
                ? 'The token may have expired or been revoked, or be from another Keystone.'
                : 'Check the credentials (and their domain) in clouds.yaml or ferry.yaml.',
          },
        );
      if (RETRY_STATUS.has(reply.status) && attempt < policy.maxAttempts) {
        const kind = reply.status === 429 ? 'throttling' : 'server';
        await sleep(
          backoffMs(policy, attempt, kind, Math.random),
          undefined,
          signal ? { signal } : {},
        ).catch((e: unknown) => {
          throw aborted(action, e);
        });
        continue;
      }
      const said = keystoneMessage(reply.body, secrets);
      throw new FerryError(
        'FERRY_KEYSTONE_RESPONSE',
        `Cannot ${action}: Keystone answered ${reply.status}${said === '' ? '' : ` (${said})`}`,
        {
          details: { url: where, status: reply.status, authType: c.authType },
          ...(reply.status === 404 ? { hint: 'Is auth_url the Keystone v3 URL?' } : {}),
        },
      );
    }
  };

  const first = await issue(options.signal);

  let current: IssuedToken | null = first;
  let pending: Promise<IssuedToken> | null = null;
  const fresh = (t: IssuedToken) => {
    const m = Math.min(margin, Math.max(0, (t.expiresAt - t.issuedAt) / 2));
    return now() < t.expiresAt - m;
  };
  const auth: KeystoneAuth = {
    projectId: first.projectId,
    async token(signal?: AbortSignal): Promise<string> {
      if (current !== null && fresh(current)) return current.token;
      if (pending === null) {
        const p = issue().then(
          (t) => {
            if (pending === p) {
              current = t;
              pending = null;
            }
            return t;
          },
          (e: unknown) => {
            if (pending === p) pending = null;
            throw e;
          },
        );
        pending = p;
      }
      return (await withSignal(pending, signal, action)).token;
    },
    invalidate(): void {
      current = null;
    },
    imageSession(at = {}): ImageSession {
      let imageUrl: string;
      if (c.imageEndpointOverride !== undefined)
        imageUrl = endpointOverride(c.imageEndpointOverride);
      else {
        if (first.catalog === undefined && first.projectId === null)
          throw new FerryError(
            'FERRY_OPENSTACK_NO_ENDPOINT',
            'Cannot find the image endpoint: the token is not scoped to a project, so it has no catalog',
            { hint: 'Name a project (project_name or project_id) in the auth.' },
          );
        imageUrl = findImageEndpoint(
          first.catalog,
          at.region ?? c.regionName ?? null,
          at.interface ?? c.interface,
          where,
        );
      }
      return {
        imageUrl,
        projectId: first.projectId,
        token: (signal?: AbortSignal) => auth.token(signal),
        invalidate: () => auth.invalidate(),
      };
    },
  };
  return auth;
}

/**
 * The ImageSession of one region: Keystone auth (openKeystoneAuth) and its
 * image endpoint, or, for auth type none, an unauthenticatedSession over
 * the explicit endpoint. Several regions of one cloud should share one
 * openKeystoneAuth instead (one token for all).
 */
export async function openImageSession(
  cloud: OpenStackCloud,
  options: OpenImageSessionOptions = {},
): Promise<ImageSession> {
  if (cloud.authType === 'none')
    return unauthenticatedSession(endpointOverride(cloud.imageEndpointOverride));
  const { region, interface: iface, ...rest } = options;
  const auth = await openKeystoneAuth(cloud, rest);
  return auth.imageSession({
    ...(region === undefined ? {} : { region }),
    ...(iface === undefined ? {} : { interface: iface }),
  });
}
