/**
 * The cloud OpenStack's clients build from OS_* environment variables
 * (openstacksdk calls it "envvars"): OS_AUTH_URL, OS_USERNAME, OS_PASSWORD,
 * OS_PROJECT_NAME and the rest, as an openrc file sets them. The variables
 * become a clouds.yaml-shaped tree, so they are checked by the same reader.
 */
import type { YamlEntry, YamlNode } from '../../config/yaml-tree.js';
import { AUTH_KEYS } from './openstack-cloud.js';

/** The name under which clients know the environment's cloud. */
export const ENV_CLOUD_NAME = 'envvars';
/** How errors name the source of the environment's cloud. */
export const ENV_SOURCE = 'the environment (OS_* variables)';

/**
 * clouds.yaml auth key for each variable (OS_ + the key in upper case):
 * every auth key but `endpoint`, which OS_ENDPOINT does not mean here.
 */
const AUTH_VARS = AUTH_KEYS.filter((k) => k !== 'endpoint');

const CLOUD_VARS = [
  'auth_type',
  'region_name',
  'interface',
  'image_interface',
  'image_endpoint_override',
  'cacert',
] as const;

function scalar(value: string | boolean): YamlNode {
  return { kind: 'scalar', line: 0, value };
}

function entry(key: string, value: YamlNode): YamlEntry {
  return { key, keyLine: 0, value };
}

/** True when the environment describes a cloud: OS_AUTH_URL, or OS_IMAGE_ENDPOINT_OVERRIDE (no auth). */
export function envHasCloud(env: Readonly<Record<string, string | undefined>>): boolean {
  return (env.OS_AUTH_URL ?? '') !== '' || (env.OS_IMAGE_ENDPOINT_OVERRIDE ?? '') !== '';
}

/** The environment's cloud as a clouds.yaml cloud mapping (empty variables are unset). */
export function envCloudNode(env: Readonly<Record<string, string | undefined>>): YamlNode {
  const get = (k: string): string | undefined => {
    const v = env[`OS_${k.toUpperCase()}`];
    return v === undefined || v === '' ? undefined : v;
  };
  const auth: YamlEntry[] = [];
  for (const k of AUTH_VARS) {
    const v = get(k);
    if (v !== undefined) auth.push(entry(k, scalar(v)));
  }
  const entries: YamlEntry[] = [];
  if (auth.length > 0) entries.push(entry('auth', { kind: 'map', line: 0, entries: auth }));
  for (const k of CLOUD_VARS) {
    const v = get(k);
    if (v !== undefined) entries.push(entry(k, scalar(v)));
  }
  // OS_INSECURE=true is the CLI's --insecure.
  const insecure = get('insecure');
  if (insecure !== undefined)
    entries.push(entry('verify', scalar(!/^(1|true|yes)$/i.test(insecure))));
  return { kind: 'map', line: 0, entries };
}
