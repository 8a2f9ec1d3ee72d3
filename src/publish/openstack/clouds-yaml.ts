/**
 * clouds.yaml found and read the way OpenStack's clients (openstacksdk, the
 * openstack CLI) do it: the first file that exists of $OS_CLIENT_CONFIG_FILE,
 * ./clouds.yaml, $XDG_CONFIG_HOME/openstack/clouds.yaml (default
 * ~/.config/openstack), /etc/openstack/clouds.yaml (each also as .yml and
 * .json); secure.yaml (same places, $OS_CLIENT_SECURE_FILE first) merged
 * over the chosen cloud; the cloud named by the caller, else $OS_CLOUD.
 * Unknown keys are ignored, as the clients ignore them. With no cloud named
 * and OS_AUTH_URL set (or the name "envvars"), the cloud is the OS_*
 * variables' (clouds-env.ts), as with the clients.
 *
 * One difference on purpose: an $OS_CLIENT_CONFIG_FILE (or
 * $OS_CLIENT_SECURE_FILE) that does not exist is an error, not skipped.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MapReader } from '../../config/schema-reader.js';
import { configInvalid, parseYamlTree } from '../../config/yaml-tree.js';
import { FerryError, isFerryError } from '../../errors/index.js';
import { ENV_CLOUD_NAME, ENV_SOURCE, envCloudNode, envHasCloud } from './clouds-env.js';
import {
  CLOUDS_YAML_KEYS,
  type CloudFields,
  finishCloud,
  mergeCloudFields,
  type OpenStackCloud,
  type OpenStackCloudSpec,
  readCloudFields,
} from './openstack-cloud.js';

/** A clouds.yaml is a few KiB; more is not one. */
const MAX_BYTES = 1024 * 1024;
const EXTENSIONS = ['yaml', 'yml', 'json'] as const;

export interface CloudsYamlOptions {
  /** Default process.env (OS_CLOUD, OS_CLIENT_CONFIG_FILE, OS_CLIENT_SECURE_FILE, XDG_CONFIG_HOME, HOME). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where ./clouds.yaml is looked for (default process.cwd()). */
  readonly cwd?: string;
  /** The system directory (default /etc/openstack). */
  readonly systemDir?: string;
}

/** The places looked at for `base` (clouds or secure), in order. */
export function cloudsSearchPath(
  base: 'clouds' | 'secure',
  options: CloudsYamlOptions = {},
): string[] {
  const env = options.env ?? process.env;
  const home = env.HOME ?? homedir();
  const userDir = join(env.XDG_CONFIG_HOME || join(home, '.config'), 'openstack');
  const dirs = [options.cwd ?? process.cwd(), userDir, options.systemDir ?? '/etc/openstack'];
  return dirs.flatMap((d) => EXTENSIONS.map((x) => join(d, `${base}.${x}`)));
}

interface FoundFile {
  readonly path: string;
  readonly text: string;
}

async function readSmall(path: string): Promise<string | null> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new FerryError('FERRY_CONFIG_INVALID', `Cannot read ${path}: ${code ?? 'error'}`, {
      cause: error,
      details: { path, line: null },
    });
  }
  if (buf.length > MAX_BYTES) throw configInvalid(path, null, 'the file is over 1 MiB');
  return buf.toString('utf8');
}

async function findFile(
  base: 'clouds' | 'secure',
  envVar: string,
  options: CloudsYamlOptions,
): Promise<FoundFile | null> {
  const env = options.env ?? process.env;
  const explicit = env[envVar];
  if (explicit !== undefined && explicit !== '') {
    const text = await readSmall(explicit);
    if (text === null)
      throw new FerryError(
        'FERRY_OPENSTACK_CLOUD_NOT_FOUND',
        `Cannot read ${base}.yaml: ${envVar} names ${explicit}, which does not exist`,
        { details: { path: explicit } },
      );
    return { path: explicit, text };
  }
  for (const path of cloudsSearchPath(base, options)) {
    const text = await readSmall(path);
    if (text !== null) return { path, text };
  }
  return null;
}

/** The `clouds:` mapping of a file, or null when the file has none. */
function cloudsOf(file: FoundFile): MapReader | null {
  const root = parseYamlTree(file.text, file.path);
  if (root === null || (root.kind === 'scalar' && root.value === null)) return null;
  const top = new MapReader(file.path, root, '', 1, null);
  return top.map('clouds', null) ?? null;
}

/**
 * Finds clouds.yaml (and secure.yaml), picks the cloud `name` (default
 * $OS_CLOUD) and checks it. Errors: FERRY_OPENSTACK_CLOUD_NOT_FOUND (no file,
 * no name, no such cloud; the message lists the clouds the file has),
 * FERRY_CONFIG_INVALID (bad YAML, a value of the wrong type, a field the auth
 * type needs is missing; with the file and line).
 */
export async function loadCloud(
  name?: string,
  options: CloudsYamlOptions = {},
): Promise<OpenStackCloud> {
  const env = options.env ?? process.env;
  const named = name ?? (env.OS_CLOUD || undefined);
  if (named === ENV_CLOUD_NAME || (named === undefined && envHasCloud(env)))
    return envCloud(env, options.cwd ?? process.cwd());
  const file = await findFile('clouds', 'OS_CLIENT_CONFIG_FILE', options);
  if (file === null)
    throw new FerryError(
      'FERRY_OPENSTACK_CLOUD_NOT_FOUND',
      'Cannot find clouds.yaml: none in the current directory, ~/.config/openstack or /etc/openstack',
      { hint: 'Write one there, point OS_CLIENT_CONFIG_FILE at one, or give the cloud inline.' },
    );
  const clouds = cloudsOf(file);
  const names = clouds?.entries().map((e) => e.key) ?? [];
  const wanted = named;
  if (wanted === undefined)
    throw new FerryError(
      'FERRY_OPENSTACK_CLOUD_NOT_FOUND',
      `Cannot choose a cloud of ${file.path}: none was named and OS_CLOUD is not set`,
      { details: { path: file.path, clouds: names.slice(0, 50).join(', ') } },
    );
  const entry = clouds?.get(wanted);
  if (clouds === null || clouds === undefined || entry === undefined)
    throw new FerryError(
      'FERRY_OPENSTACK_CLOUD_NOT_FOUND',
      `Cannot find cloud "${wanted.slice(0, 100)}" in ${file.path}: it has ${
        names.length === 0 ? 'no clouds' : names.slice(0, 50).join(', ')
      }`,
      { details: { path: file.path, cloud: wanted.slice(0, 100) } },
    );
  let fields = readCloudFields(clouds.map(wanted, null)!, CLOUDS_YAML_KEYS, false);
  const secure = await findFile('secure', 'OS_CLIENT_SECURE_FILE', options);
  const secureCloud = secure === null ? undefined : cloudsOf(secure)?.map(wanted, null);
  if (secureCloud !== undefined)
    fields = mergeCloudFields(fields, readCloudFields(secureCloud, CLOUDS_YAML_KEYS, false));
  return finishCloud(
    fields,
    wanted,
    {
      path: secureCloud === undefined ? file.path : `${file.path} (with ${secure!.path})`,
      line: entry.keyLine,
      what: `cloud "${wanted}"`,
    },
    options.cwd ?? process.cwd(),
  );
}

/** The cloud of the OS_* variables, checked like a cloud of clouds.yaml. */
function envCloud(env: Readonly<Record<string, string | undefined>>, cwd: string): OpenStackCloud {
  try {
    const map = new MapReader(ENV_SOURCE, envCloudNode(env), '', 0, null);
    return finishCloud(
      readCloudFields(map, CLOUDS_YAML_KEYS, false),
      ENV_CLOUD_NAME,
      { path: ENV_SOURCE, line: 0, what: `cloud "${ENV_CLOUD_NAME}"` },
      cwd,
    );
  } catch (error) {
    // The variables have no lines: drop the ":0" the config errors would show.
    if (isFerryError(error, 'FERRY_CONFIG_INVALID'))
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        error.message.replace(`${ENV_SOURCE}:0:`, `${ENV_SOURCE}:`),
        { details: { path: ENV_SOURCE, line: null } },
      );
    throw error;
  }
}

/**
 * The cloud a ferry.yaml target means: inline as it is, or the named cloud
 * of clouds.yaml with the target's overrides (interface, endpoint, cacert,
 * verify) over it.
 */
export async function resolveCloudSpec(
  spec: OpenStackCloudSpec,
  options: CloudsYamlOptions = {},
): Promise<OpenStackCloud> {
  if (spec.kind === 'inline') return spec.cloud;
  const cloud = await loadCloud(spec.cloud ?? undefined, options);
  const o: Omit<CloudFields, 'auth' | 'authType'> = spec.overrides;
  return {
    ...cloud,
    ...(o.interface === undefined ? {} : { interface: o.interface }),
    ...(o.endpoint === undefined ? {} : { imageEndpointOverride: o.endpoint }),
    ...(o.cacert === undefined ? {} : { cacert: o.cacert }),
    ...(o.verify === undefined ? {} : { verify: o.verify }),
  };
}
