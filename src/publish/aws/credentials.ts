/**
 * A target's credentials as one CredentialProvider: static keys, a profile
 * of ~/.aws/credentials and ~/.aws/config (the SDK's fromIni, role_arn and
 * source_profile included), a role assumed through STS AssumeRole, or the
 * SDK's default chain. Temporary credentials are cached and refreshed
 * shortly before they expire; concurrent callers share one refresh.
 */

import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { fromIni } from '@aws-sdk/credential-provider-ini';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { CredentialsConfig } from '../../config/index.js';
import { FerryError } from '../../errors/index.js';
import type { AwsCredentials, CredentialProvider } from '../types.js';

export interface CredentialProviderOptions {
  readonly region: string;
  /** An AWS-compatible endpoint URL (the local cloud's, resolved); STS calls go there too. */
  readonly endpoint?: string;
  /** What assumes the role (default: the SDK's default chain). */
  readonly sourceCredentials?: CredentialProvider;
  /** Refresh this long before expiry (default 5 minutes). */
  readonly refreshBeforeMs?: number;
  /** AssumeRole's DurationSeconds (default 3600). */
  readonly sessionSeconds?: number;
  /** The shared files to read profiles from (default: the SDK's: ~/.aws/credentials, ~/.aws/config, or $AWS_*_FILE). */
  readonly iniFiles?: { readonly credentials?: string; readonly config?: string };
  readonly now?: () => number;
}

export const DEFAULT_REFRESH_BEFORE_MS = 5 * 60_000;
export const DEFAULT_SESSION_NAME = 'ferry-publish';

function copy(c: {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  expiration?: Date | undefined;
}): AwsCredentials {
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    ...(c.sessionToken === undefined ? {} : { sessionToken: c.sessionToken }),
    ...(c.expiration === undefined ? {} : { expiration: c.expiration }),
  };
}

function failed(what: string, error: unknown, hint: string): FerryError {
  if (error instanceof FerryError) return error;
  const e = error as { name?: string; message?: string };
  return new FerryError(
    'FERRY_AWS_CREDENTIALS',
    `Cannot get credentials from ${what}: ${e.name ?? 'Error'}: ${e.message ?? String(error)}`,
    { cause: error, hint, details: { source: what } },
  );
}

/**
 * Caches what `fetch` returns until `refreshBeforeMs` before its expiration
 * (forever without one); one fetch at a time, shared by concurrent callers.
 */
export function cachedProvider(
  fetch: () => Promise<AwsCredentials>,
  options: { readonly refreshBeforeMs?: number; readonly now?: () => number } = {},
): CredentialProvider {
  const now = options.now ?? Date.now;
  const margin = options.refreshBeforeMs ?? DEFAULT_REFRESH_BEFORE_MS;
  let current: AwsCredentials | undefined;
  let inflight: Promise<AwsCredentials> | undefined;
  const fresh = (c: AwsCredentials): boolean =>
    c.expiration === undefined || c.expiration.getTime() - margin > now();
  return () => {
    if (current !== undefined && fresh(current)) return Promise.resolve(current);
    if (inflight === undefined) {
      inflight = fetch()
        .then((c) => {
          current = c;
          return c;
        })
        .finally(() => {
          inflight = undefined;
        });
    }
    return inflight;
  };
}

function assumeRole(
  config: Extract<CredentialsConfig, { kind: 'role' }>,
  options: CredentialProviderOptions,
): () => Promise<AwsCredentials> {
  const source = options.sourceCredentials ?? defaultProvider();
  const sts = new STSClient({
    region: options.region,
    credentials: source,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
  });
  return async () => {
    try {
      const out = await sts.send(
        new AssumeRoleCommand({
          RoleArn: config.roleArn,
          RoleSessionName: config.sessionName ?? DEFAULT_SESSION_NAME,
          DurationSeconds: options.sessionSeconds ?? 3600,
          ...(config.externalId === undefined ? {} : { ExternalId: config.externalId }),
        }),
      );
      const c = out.Credentials;
      if (c?.AccessKeyId === undefined || c.SecretAccessKey === undefined)
        throw new Error('AssumeRole answered without credentials');
      return copy({
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
      });
    } catch (error) {
      throw failed(
        `role ${config.roleArn}`,
        error,
        'Check that the role exists, trusts the calling account, and that externalId matches its trust policy',
      );
    }
  };
}

/** The provider for a target's `credentials` in `region` (and its endpoint, if any). */
export function credentialProvider(
  config: CredentialsConfig,
  options: CredentialProviderOptions,
): CredentialProvider {
  const cacheOptions = {
    ...(options.refreshBeforeMs === undefined ? {} : { refreshBeforeMs: options.refreshBeforeMs }),
    ...(options.now === undefined ? {} : { now: options.now }),
  };
  switch (config.kind) {
    case 'static': {
      const c = copy(config);
      return () => Promise.resolve(c);
    }
    case 'role':
      return cachedProvider(assumeRole(config, options), cacheOptions);
    case 'profile': {
      const files = options.iniFiles;
      const ini = fromIni({
        profile: config.profile,
        ...(files?.credentials === undefined ? {} : { filepath: files.credentials }),
        ...(files?.config === undefined ? {} : { configFilepath: files.config }),
        // A profile's role_arn is assumed through the same endpoint.
        clientConfig: {
          region: options.region,
          ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        },
      });
      return cachedProvider(async () => {
        try {
          return copy(await ini());
        } catch (error) {
          throw failed(
            `profile ${config.profile}`,
            error,
            'Check ~/.aws/credentials and ~/.aws/config (or $AWS_SHARED_CREDENTIALS_FILE, $AWS_CONFIG_FILE)',
          );
        }
      }, cacheOptions);
    }
    case 'default': {
      const chain = defaultProvider();
      return cachedProvider(async () => {
        try {
          return copy(await chain());
        } catch (error) {
          throw failed(
            "the SDK's default chain",
            error,
            'Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or give the target credentials in ferry.yaml',
          );
        }
      }, cacheOptions);
    }
  }
}
