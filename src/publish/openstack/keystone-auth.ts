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
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../../errors/index.js';
import { backoffMs, CONNECTION_CODES, type RetryPolicy } from '../retry.js';
import { type ImageSession, type ImageTls, unauthenticatedSession } from './image-session.js';
import { findImageEndpoint, imageBaseUrl } from './keystone-catalog.js';
import {
  aborted,
  BodyTooLarge,
  badResponse,
  MAX_KEYSTONE_BODY,
  post,
  type Reply,
  readCa,
  type Transport,
  withSignal,
} from './keystone-http.js';
import type { NamedRef, OpenStackCloud, OpenStackInterface } from './openstack-cloud.js';

/** Fernet tokens are under 300 characters; PKI tokens of old clouds were a few KiB. */
const MAX_TOKEN_LENGTH = 16 * 1024;

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
  // The same trust for Keystone and, through the sessions, the image service.
  const tls = await cloudTls(c);
  const transport: Transport = { ...tls, timeoutMs: options.timeoutMs ?? 30_000 };
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
        tls,
      };
    },
  };
  return auth;
}

/** A cloud's TLS settings for its image endpoint (the cacert file read, FERRY_IO if it cannot be). */
export async function cloudTls(cloud: OpenStackCloud): Promise<ImageTls> {
  return {
    verify: cloud.verify,
    ...(cloud.cacert === undefined ? {} : { ca: await readCa(cloud.cacert) }),
  };
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
    return unauthenticatedSession(
      endpointOverride(cloud.imageEndpointOverride),
      await cloudTls(cloud),
    );
  const { region, interface: iface, ...rest } = options;
  const auth = await openKeystoneAuth(cloud, rest);
  return auth.imageSession({
    ...(region === undefined ? {} : { region }),
    ...(iface === undefined ? {} : { interface: iface }),
  });
}
