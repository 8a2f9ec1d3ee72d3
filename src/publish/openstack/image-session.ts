/**
 * How ferry's Glance client reaches one cloud's image service: the endpoint
 * (found in the Keystone catalog by region and interface, or given
 * explicitly) and the token to send with each request. Keystone auth
 * (keystone-auth.ts) and an explicit endpoint without auth both produce one.
 */

/** TLS for an https image endpoint, as clouds.yaml says: its cacert (PEM) and verify. */
export interface ImageTls {
  /** CA certificates to trust (the default set otherwise). */
  readonly ca?: Buffer;
  /** false: do not check the certificate. */
  readonly verify: boolean;
}

export interface ImageSession {
  /** The image service's base URL, without the version (e.g. http://127.0.0.1:9292). */
  readonly imageUrl: string;
  /** The Keystone project the session acts in (null without auth). */
  readonly projectId: string | null;
  /**
   * The X-Auth-Token value for the next request: a cached token while it is
   * valid, a new one when it expires soon or was invalidated; null without auth.
   */
  token(signal?: AbortSignal): Promise<string | null>;
  /** Forgets the cached token (the image service answered 401 with it). */
  invalidate(): void;
  /** TLS settings of the cloud (the system's CAs, checked, when absent). */
  readonly tls?: ImageTls;
}

/** A session for an image service that needs no auth (an explicit endpoint). */
export function unauthenticatedSession(imageUrl: string, tls?: ImageTls): ImageSession {
  return {
    imageUrl: imageUrl.replace(/\/+$/, ''),
    projectId: null,
    token: async () => null,
    invalidate: () => {},
    ...(tls === undefined ? {} : { tls }),
  };
}
