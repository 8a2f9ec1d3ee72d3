/**
 * One OpenStack cloud as ferry uses it: how to authenticate with Keystone
 * v3 (password, application credential, token) or not at all (an explicit
 * image endpoint), and which image endpoint of the catalog to use (region,
 * interface). Read from a cloud of clouds.yaml (clouds-yaml.ts) or from a
 * ferry.yaml target given inline (parseOpenStackTarget); both go through the
 * same field reader, then one completeness check.
 *
 * The result holds secrets (password, application credential secret,
 * token): never log it whole. Error messages name fields, never values.
 */
import { isAbsolute, resolve } from 'node:path';
import { MapReader } from '../../config/schema-reader.js';
import { configInvalid, type YamlNode } from '../../config/yaml-tree.js';

export type OpenStackAuthType = 'password' | 'v3applicationcredential' | 'token' | 'none';
export type OpenStackInterface = 'public' | 'internal' | 'admin';
export const OPENSTACK_INTERFACES: readonly OpenStackInterface[] = ['public', 'internal', 'admin'];

/** A domain by id or by name. */
export type DomainRef = { readonly id: string } | { readonly name: string };
/** A user or project by id, or by name within a domain. */
export type NamedRef =
  | { readonly id: string }
  | { readonly name: string; readonly domain: DomainRef };

export interface PasswordAuth {
  /** Keystone's v3 base URL, ending in /v3. */
  readonly authUrl: string;
  readonly user: NamedRef;
  readonly password: string;
  /** Absent: an unscoped request (Keystone scopes to the user's default project, if any). */
  readonly project?: NamedRef;
}

export interface AppCredentialAuth {
  readonly authUrl: string;
  /** By id, or by name with the user who owns it. */
  readonly credential: { readonly id: string } | { readonly name: string; readonly user: NamedRef };
  readonly secret: string;
}

export interface TokenAuth {
  readonly authUrl: string;
  readonly token: string;
  readonly project?: NamedRef;
}

interface CloudCommon {
  /** The cloud's name in clouds.yaml; null when given inline. */
  readonly name: string | null;
  /** The region whose image endpoint is used, unless the caller names one. */
  readonly regionName?: string;
  /** Which catalog endpoint: default public. */
  readonly interface: OpenStackInterface;
  /** Use this image URL instead of the catalog's (with auth) or as the only one (without). */
  readonly imageEndpointOverride?: string;
  /** A PEM file of CA certificates for https (absolute). */
  readonly cacert?: string;
  /** false: do not verify TLS certificates (default true). */
  readonly verify: boolean;
}

export type OpenStackCloud = CloudCommon &
  (
    | { readonly authType: 'password'; readonly auth: PasswordAuth }
    | { readonly authType: 'v3applicationcredential'; readonly auth: AppCredentialAuth }
    | { readonly authType: 'token'; readonly auth: TokenAuth }
    | { readonly authType: 'none'; readonly auth: null; readonly imageEndpointOverride: string }
  );

/** The keys of `auth:` (clouds.yaml's names); tenant_* are the old names of project_*. */
export const AUTH_KEYS = [
  'auth_url',
  'username',
  'user_id',
  'password',
  'user_domain_name',
  'user_domain_id',
  'project_name',
  'project_id',
  'tenant_name',
  'tenant_id',
  'project_domain_name',
  'project_domain_id',
  'domain_name',
  'domain_id',
  'application_credential_id',
  'application_credential_name',
  'application_credential_secret',
  'token',
  'endpoint',
] as const;
type AuthKey = (typeof AUTH_KEYS)[number];

/** Long enough for any token or secret; anything longer is not one. */
const MAX_VALUE = 16 * 1024;

const AUTH_TYPES: Readonly<Record<string, OpenStackAuthType>> = {
  password: 'password',
  v3password: 'password',
  v3applicationcredential: 'v3applicationcredential',
  token: 'token',
  v3token: 'token',
  none: 'none',
  noauth: 'none',
};

/** Where each cloud-level field is read from: clouds.yaml and ferry.yaml name them differently. */
export interface CloudKeys {
  readonly authType: string;
  readonly regionName: string | null;
  readonly interface: readonly string[];
  readonly endpoint: string;
  readonly cacert: string;
  readonly verify: string;
}

/** clouds.yaml's names; image_interface wins over interface. */
export const CLOUDS_YAML_KEYS: CloudKeys = {
  authType: 'auth_type',
  regionName: 'region_name',
  interface: ['image_interface', 'interface'],
  endpoint: 'image_endpoint_override',
  cacert: 'cacert',
  verify: 'verify',
};

/** A ferry.yaml target's names (camelCase like its other keys; the region comes from `regions`). */
export const TARGET_KEYS: CloudKeys = {
  authType: 'authType',
  regionName: null,
  interface: ['interface'],
  endpoint: 'endpoint',
  cacert: 'cacert',
  verify: 'verify',
};

/** The fields of one cloud as read from one file, before secure.yaml merges over them. */
export interface CloudFields {
  readonly authType?: OpenStackAuthType;
  readonly auth: Partial<Record<AuthKey, string>>;
  readonly regionName?: string;
  readonly interface?: OpenStackInterface;
  readonly endpoint?: string;
  readonly cacert?: string;
  readonly verify?: boolean;
}

function text(map: MapReader, key: string): string | undefined {
  const e = map.get(key);
  if (e === undefined) return undefined;
  if (e.value.kind === 'scalar' && typeof e.value.value === 'number')
    throw map.fail(e.value.line, `${map.nameOf(key)} must be a string (quote it: "${key}: '...'")`);
  const v = map.string(key);
  if (v !== undefined && v.length > MAX_VALUE)
    throw map.fail(e.value.line, `${map.nameOf(key)} is longer than ${MAX_VALUE} characters`);
  return v;
}

function httpUrl(map: MapReader, key: string, value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw map.fail(
      map.get(key)?.value.line ?? map.line,
      `${map.nameOf(key)} must be an http(s) URL`,
    );
  if (url.username !== '' || url.password !== '')
    throw map.fail(
      map.get(key)?.value.line ?? map.line,
      `${map.nameOf(key)} must not hold credentials`,
    );
  return value;
}

/**
 * Reads the fields of one cloud mapping. `strict` refuses unknown keys in
 * `auth:` (ferry.yaml); clouds.yaml's unknown keys are ignored, as OpenStack
 * clients ignore them.
 */
export function readCloudFields(map: MapReader, keys: CloudKeys, strict: boolean): CloudFields {
  const authType = text(map, keys.authType);
  let type: OpenStackAuthType | undefined;
  if (authType !== undefined) {
    type = AUTH_TYPES[authType];
    if (type === undefined)
      throw map.fail(
        map.get(keys.authType)?.value.line ?? map.line,
        `${map.nameOf(keys.authType)} must be one of ${Object.keys(AUTH_TYPES).join(', ')}`,
      );
  }
  const authMap = map.map('auth', strict ? AUTH_KEYS : null);
  const auth: Partial<Record<AuthKey, string>> = {};
  if (authMap !== undefined)
    for (const k of AUTH_KEYS) {
      const v = text(authMap, k);
      if (v !== undefined)
        auth[k] = k === 'auth_url' || k === 'endpoint' ? httpUrl(authMap, k, v) : v;
    }
  const regionName = keys.regionName === null ? undefined : text(map, keys.regionName);
  let iface: OpenStackInterface | undefined;
  for (const k of keys.interface) {
    if (!map.has(k)) continue;
    // Clients also accept the old catalog spellings publicURL and internalURL.
    const raw = map.get(k)?.value;
    const v =
      raw?.kind === 'scalar' && typeof raw.value === 'string'
        ? raw.value.replace(/URL$/, '')
        : undefined;
    if (v === undefined || !(OPENSTACK_INTERFACES as readonly string[]).includes(v))
      throw map.fail(
        raw?.line ?? map.line,
        `${map.nameOf(k)} must be one of ${OPENSTACK_INTERFACES.join(', ')}`,
      );
    iface = v as OpenStackInterface;
    break;
  }
  const endpointText = text(map, keys.endpoint);
  const endpoint =
    endpointText === undefined ? undefined : httpUrl(map, keys.endpoint, endpointText);
  const cacert = text(map, keys.cacert);
  let verify: boolean | undefined;
  const v = map.get(keys.verify);
  if (v !== undefined) {
    if (v.value.kind !== 'scalar' || typeof v.value.value !== 'boolean')
      throw map.fail(v.value.line, `${map.nameOf(keys.verify)} must be true or false`);
    verify = v.value.value;
  }
  return {
    auth,
    ...(type === undefined ? {} : { authType: type }),
    ...(regionName === undefined ? {} : { regionName }),
    ...(iface === undefined ? {} : { interface: iface }),
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(cacert === undefined ? {} : { cacert }),
    ...(verify === undefined ? {} : { verify }),
  };
}

/** `over` (secure.yaml's cloud) merged over `base`, field by field and within auth. */
export function mergeCloudFields(base: CloudFields, over: CloudFields): CloudFields {
  return { ...base, ...over, auth: { ...base.auth, ...over.auth } };
}

/** Where a cloud was read, for the errors of the completeness check. */
export interface CloudSource {
  readonly path: string;
  readonly line: number;
  /** How messages name it: `cloud "prod"` or `targets.os`. */
  readonly what: string;
}

/** Keystone's v3 base URL from an auth_url with or without the version. */
function v3Base(authUrl: string, fail: (reason: string) => Error): string {
  const url = new URL(authUrl);
  url.search = '';
  url.hash = '';
  const path = url.pathname.replace(/\/+$/, '');
  if (/\/v2(\.0)?$/.test(path)) throw fail('auth_url names Keystone v2.0; ferry speaks v3 only');
  url.pathname = /\/v3$/.test(path) ? path : `${path}/v3`;
  return url.toString().replace(/\/+$/, '');
}

function domainOf(auth: CloudFields['auth'], kind: 'user' | 'project'): DomainRef {
  const id = auth[`${kind}_domain_id`];
  if (id !== undefined) return { id };
  const name = auth[`${kind}_domain_name`];
  if (name !== undefined) return { name };
  if (auth.domain_id !== undefined) return { id: auth.domain_id };
  if (auth.domain_name !== undefined) return { name: auth.domain_name };
  // What the openstack CLI assumes too (its --os-default-domain).
  return { id: 'default' };
}

function userOf(auth: CloudFields['auth']): NamedRef | undefined {
  if (auth.user_id !== undefined) return { id: auth.user_id };
  if (auth.username !== undefined) return { name: auth.username, domain: domainOf(auth, 'user') };
  return undefined;
}

function projectOf(auth: CloudFields['auth']): NamedRef | undefined {
  const id = auth.project_id ?? auth.tenant_id;
  if (id !== undefined) return { id };
  const name = auth.project_name ?? auth.tenant_name;
  if (name !== undefined) return { name, domain: domainOf(auth, 'project') };
  return undefined;
}

/**
 * Checks that `fields` say everything their auth type needs and builds the
 * cloud. The auth type defaults to password, or to none when there is no
 * `auth` at all but an endpoint. Relative cacert paths resolve against `baseDir`.
 */
export function finishCloud(
  fields: CloudFields,
  name: string | null,
  source: CloudSource,
  baseDir: string,
): OpenStackCloud {
  const fail = (reason: string) =>
    configInvalid(source.path, source.line, `${source.what}: ${reason}`);
  const a = fields.auth;
  const endpoint = fields.endpoint ?? a.endpoint;
  const hasAuth = Object.keys(a).some((k) => k !== 'endpoint');
  const type = fields.authType ?? (!hasAuth && endpoint !== undefined ? 'none' : 'password');
  const common = {
    name,
    ...(fields.regionName === undefined ? {} : { regionName: fields.regionName }),
    interface: fields.interface ?? 'public',
    ...(fields.cacert === undefined
      ? {}
      : { cacert: isAbsolute(fields.cacert) ? fields.cacert : resolve(baseDir, fields.cacert) }),
    verify: fields.verify ?? true,
  } as const;
  if (type === 'none') {
    if (endpoint === undefined)
      throw fail('auth type none needs an image endpoint (the endpoint to use without auth)');
    return { ...common, authType: 'none', auth: null, imageEndpointOverride: endpoint };
  }
  const withEndpoint = endpoint === undefined ? {} : { imageEndpointOverride: endpoint };
  if (a.auth_url === undefined) throw fail(`auth type ${type} needs auth.auth_url`);
  const authUrl = v3Base(a.auth_url, fail);
  const project = projectOf(a);
  if (type === 'password') {
    const user = userOf(a);
    if (user === undefined) throw fail('password auth needs auth.username or auth.user_id');
    if (a.password === undefined) throw fail('password auth needs auth.password');
    return {
      ...common,
      ...withEndpoint,
      authType: 'password',
      auth: { authUrl, user, password: a.password, ...(project === undefined ? {} : { project }) },
    };
  }
  if (type === 'token') {
    if (a.token === undefined) throw fail('token auth needs auth.token');
    return {
      ...common,
      ...withEndpoint,
      authType: 'token',
      auth: { authUrl, token: a.token, ...(project === undefined ? {} : { project }) },
    };
  }
  if (a.application_credential_secret === undefined)
    throw fail('application credential auth needs auth.application_credential_secret');
  let credential: AppCredentialAuth['credential'];
  if (a.application_credential_id !== undefined) credential = { id: a.application_credential_id };
  else if (a.application_credential_name !== undefined) {
    const user = userOf(a);
    if (user === undefined)
      throw fail(
        'an application credential given by name needs its user (auth.username or auth.user_id)',
      );
    credential = { name: a.application_credential_name, user };
  } else
    throw fail(
      'application credential auth needs auth.application_credential_id or auth.application_credential_name',
    );
  return {
    ...common,
    ...withEndpoint,
    authType: 'v3applicationcredential',
    auth: { authUrl, credential, secret: a.application_credential_secret },
  };
}

/** The keys a ferry.yaml target of type openstack may use for its cloud. */
export const OPENSTACK_TARGET_KEYS = [
  'cloud',
  'authType',
  'auth',
  'interface',
  'endpoint',
  'cacert',
  'verify',
] as const;

/** What a target says about its cloud: a cloud of clouds.yaml (with overrides), or all of it inline. */
export type OpenStackCloudSpec =
  | {
      readonly kind: 'named';
      /**
       * The cloud's name in clouds.yaml (null: the one $OS_CLOUD names); read
       * when the target is used, not when ferry.yaml is.
       */
      readonly cloud: string | null;
      readonly overrides: Omit<CloudFields, 'auth' | 'authType'>;
    }
  | { readonly kind: 'inline'; readonly cloud: OpenStackCloud };

/** What a target may say over a clouds.yaml cloud (cacert resolved against ferry.yaml's directory). */
function overridesOf(fields: CloudFields, baseDir: string): Omit<CloudFields, 'auth' | 'authType'> {
  const { auth: _auth, authType: _type, cacert, ...rest } = fields;
  return cacert === undefined
    ? rest
    : { ...rest, cacert: isAbsolute(cacert) ? cacert : resolve(baseDir, cacert) };
}

/**
 * Reads the cloud keys (OPENSTACK_TARGET_KEYS) of a ferry.yaml target whose
 * other keys the caller checks. Either `cloud: NAME` (with at most interface,
 * endpoint, cacert and verify beside it), or `auth:` (clouds.yaml's auth
 * keys; unknown ones refused) with an optional `authType`, or just
 * `endpoint: URL` (no auth). Relative cacert paths resolve against `baseDir`.
 */
export function parseOpenStackTarget(target: MapReader, baseDir: string): OpenStackCloudSpec {
  const fields = readCloudFields(target, TARGET_KEYS, true);
  const cloud = text(target, 'cloud');
  if (cloud !== undefined) {
    for (const k of ['auth', 'authType'])
      if (target.has(k))
        throw target.fail(
          target.get(k)?.keyLine ?? target.line,
          `${target.name}: "${k}" does not go with "cloud" (the cloud's auth is in clouds.yaml)`,
        );
    return { kind: 'named', cloud, overrides: overridesOf(fields, baseDir) };
  }
  // Nothing said: the cloud $OS_CLOUD names, as the OpenStack clients do.
  if (!target.has('auth') && !target.has('endpoint') && !target.has('authType')) {
    return { kind: 'named', cloud: null, overrides: overridesOf(fields, baseDir) };
  }
  return {
    kind: 'inline',
    cloud: finishCloud(
      fields,
      null,
      { path: target.path, line: target.line, what: target.name },
      baseDir,
    ),
  };
}

/** parseOpenStackTarget over a yaml-tree node (a target mapping) with its own allowed keys. */
export function parseOpenStackTargetNode(
  path: string,
  node: YamlNode,
  name: string,
  line: number,
  otherKeys: readonly string[],
  baseDir: string,
): OpenStackCloudSpec {
  return parseOpenStackTarget(
    new MapReader(path, node, name, line, [...OPENSTACK_TARGET_KEYS, ...otherKeys]),
    baseDir,
  );
}
