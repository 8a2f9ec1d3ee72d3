/**
 * How a target authenticates: the SDK's default chain (nothing given), a
 * named profile, a role assumed through STS, or static keys. Exactly one.
 */
import type { MapReader } from './schema-reader.js';

export type CredentialsConfig =
  | { readonly kind: 'default' }
  | { readonly kind: 'profile'; readonly profile: string }
  | {
      readonly kind: 'role';
      readonly roleArn: string;
      readonly externalId?: string;
      readonly sessionName?: string;
    }
  | {
      readonly kind: 'static';
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly sessionToken?: string;
    };

export const CREDENTIALS_KEYS = [
  'profile',
  'roleArn',
  'externalId',
  'sessionName',
  'accessKeyId',
  'secretAccessKey',
  'sessionToken',
] as const;

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
/** STS's RoleSessionName and ExternalId rules. */
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;
const ACCESS_KEY_ID = /^[A-Za-z0-9]{4,128}$/;

/** Reads a target's `credentials` mapping (absent: the default chain). */
export function parseCredentials(map: MapReader | undefined): CredentialsConfig {
  if (map === undefined) return { kind: 'default' };
  const name = map.name;
  const present = CREDENTIALS_KEYS.filter((k) => map.has(k));
  const line = (k: string) => map.get(k)?.keyLine ?? map.line;
  const only = (allowed: readonly string[], kind: string) => {
    const extra = present.find((k) => !allowed.includes(k));
    if (extra !== undefined)
      throw map.fail(line(extra), `${name}: "${extra}" does not go with ${kind}`);
  };
  if (map.has('profile')) {
    only(['profile'], 'a profile');
    return { kind: 'profile', profile: map.string('profile')! };
  }
  if (map.has('roleArn')) {
    only(['roleArn', 'externalId', 'sessionName'], 'roleArn');
    const roleArn = map.string('roleArn')!;
    if (!ROLE_ARN.test(roleArn))
      throw map.fail(
        line('roleArn'),
        `${name}.roleArn must be a role ARN (arn:aws:iam::ACCOUNT:role/NAME)`,
      );
    const externalId = map.string('externalId');
    if (externalId !== undefined && !EXTERNAL_ID.test(externalId))
      throw map.fail(
        line('externalId'),
        `${name}.externalId must be 2 to 1224 of A-Z a-z 0-9 +=,.@:/-`,
      );
    const sessionName = map.string('sessionName');
    if (sessionName !== undefined && !SESSION_NAME.test(sessionName))
      throw map.fail(
        line('sessionName'),
        `${name}.sessionName must be 2 to 64 of A-Z a-z 0-9 _+=,.@-`,
      );
    return {
      kind: 'role',
      roleArn,
      ...(externalId === undefined ? {} : { externalId }),
      ...(sessionName === undefined ? {} : { sessionName }),
    };
  }
  if (map.has('accessKeyId') || map.has('secretAccessKey') || map.has('sessionToken')) {
    only(['accessKeyId', 'secretAccessKey', 'sessionToken'], 'static keys');
    const accessKeyId = map.string('accessKeyId');
    const secretAccessKey = map.string('secretAccessKey');
    if (accessKeyId === undefined || secretAccessKey === undefined)
      throw map.fail(map.line, `${name} needs both accessKeyId and secretAccessKey`);
    if (!ACCESS_KEY_ID.test(accessKeyId))
      throw map.fail(
        line('accessKeyId'),
        `${name}.accessKeyId must be 4 to 128 letters and digits`,
      );
    const sessionToken = map.string('sessionToken');
    return {
      kind: 'static',
      accessKeyId,
      secretAccessKey,
      ...(sessionToken === undefined ? {} : { sessionToken }),
    };
  }
  throw map.fail(
    map.line,
    `${name} needs one of profile, roleArn, or accessKeyId with secretAccessKey (leave it out for the default chain)`,
  );
}
