/**
 * An OpenStack target of ferry.yaml: a cloud (a clouds.yaml entry, Keystone
 * auth inline, or an explicit image endpoint without auth; the cloud keys
 * are read by openstack-cloud.ts), the regions of it that get the
 * image, and how the image goes into Glance (format, upload method, stores,
 * visibility, members, tags, extra properties).
 */
import { dirname } from 'node:path';
import { GLANCE_DISK_FORMATS, type GlanceOptions } from '../publish/openstack/glance-options.js';
import {
  OPENSTACK_TARGET_KEYS as CLOUD_KEYS,
  type OpenStackCloudSpec,
  parseOpenStackTarget as parseCloudKeys,
} from '../publish/openstack/openstack-cloud.js';
import { type MapReader, scalarString } from './schema-reader.js';
import { parseRetention, parseTargetStreams } from './target-common.js';
import { configInvalid } from './yaml-tree.js';

export interface OpenStackTargetConfig {
  readonly type: 'openstack';
  readonly name: string;
  /**
   * The cloud: a clouds.yaml entry (read when the target is used), or given
   * inline (Keystone auth, or an explicit endpoint without auth).
   */
  readonly cloud: OpenStackCloudSpec;
  /** Absent: the cloud's own region (region_name), or the one its catalog has. */
  readonly regions: readonly string[] | null;
  readonly glance: GlanceOptions;
  /** Absent: keep every image. */
  readonly retention?: { readonly keep: number };
  /** The streams published here (default: every stream), all defined. */
  readonly streams: readonly string[];
}

export const OPENSTACK_TARGET_KEYS = [
  'type',
  ...CLOUD_KEYS,
  'regions',
  'diskFormat',
  'compress',
  'upload',
  'webDownload',
  'stores',
  'visibility',
  'members',
  'tags',
  'properties',
  'retention',
  'streams',
] as const;

const MAX_REGIONS = 32;
const MAX_STORES = 16;
/** Glance has no hard limit on members; a target sharing with more is likely a mistake. */
const MAX_MEMBERS = 500;
/** Glance keeps tags in a 255-character column; 128 tags an image is its default quota. */
const MAX_TAGS = 128;
const MAX_TAG = 255;
const MAX_PROPERTIES = 64;
/** Glance's property key and value columns. */
const MAX_PROPERTY_KEY = 255;
const MAX_PROPERTY_VALUE = 65535;
/** Region, store and cloud names: what a file name and a journal key can hold. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Keystone ids are 32 hex digits (project ids in Glance's members). */
const PROJECT_ID = /^[0-9a-f]{32}$/;
/** Properties ferry sets itself (see docs/openstack.md). */
const RESERVED_PROPERTY = /^(ferry_|os_|kernel_id$|ramdisk_id$)/;
const GLANCE_CORE = new Set([
  'id',
  'name',
  'status',
  'visibility',
  'protected',
  'os_hidden',
  'checksum',
  'owner',
  'size',
  'virtual_size',
  'disk_format',
  'container_format',
  'min_ram',
  'min_disk',
  'created_at',
  'updated_at',
  'tags',
  'locations',
  'direct_url',
  'self',
  'file',
  'schema',
  'stores',
]);

function names(
  map: MapReader,
  key: string,
  max: number,
  pattern: RegExp,
  what: string,
): string[] | undefined {
  const list = map.list(key, max, (node, n) => {
    const v = scalarString(map.path, node, n, what);
    if (!pattern.test(v)) throw configInvalid(map.path, node.line, `${n}: "${v}" is not ${what}`);
    return v;
  });
  if (list !== undefined && new Set(list).size !== list.length)
    throw map.fail(map.get(key)!.value.line, `${map.nameOf(key)} names one twice`);
  return list;
}

function parseProperties(map: MapReader | undefined): Record<string, string> {
  if (map === undefined) return {};
  const entries = map.entries();
  if (entries.length > MAX_PROPERTIES)
    throw map.fail(map.line, `${map.name} has more than ${MAX_PROPERTIES} properties`);
  const out: Array<[string, string]> = [];
  for (const { key, keyLine, value } of entries) {
    if (key === '' || key.length > MAX_PROPERTY_KEY || !/^[A-Za-z0-9_:.-]+$/.test(key))
      throw map.fail(
        keyLine,
        `property "${key.slice(0, 40)}" must be 1 to 255 of A-Z a-z 0-9 _ : . -`,
      );
    if (RESERVED_PROPERTY.test(key) || GLANCE_CORE.has(key))
      throw map.fail(
        keyLine,
        `property "${key}" is set by ferry or Glance itself (reserved: ferry_*, os_*, kernel_id, ramdisk_id and Glance's own fields)`,
      );
    if (value.kind !== 'scalar' || typeof value.value !== 'string')
      throw map.fail(
        value.line,
        `${map.nameOf(key)} must be a string (quote numbers and booleans)`,
      );
    if (value.value.length > MAX_PROPERTY_VALUE)
      throw map.fail(
        value.line,
        `${map.nameOf(key)} is longer than ${MAX_PROPERTY_VALUE} characters`,
      );
    out.push([key, value.value]);
  }
  return Object.fromEntries(out);
}

/** `webDownload: {listen: HOST:PORT, url: http://...}`, for upload: web-download only (and needed there). */
function parseWebDownload(map: MapReader, wanted: boolean): GlanceOptions['webDownload'] {
  const w = map.map('webDownload', ['listen', 'url']);
  if (w === undefined) {
    if (wanted)
      throw map.fail(
        map.get('upload')!.value.line,
        `${map.name}: upload web-download needs "webDownload: {listen: HOST:PORT}" (where Glance fetches the image from)`,
      );
    return undefined;
  }
  if (!wanted)
    throw map.fail(
      map.get('webDownload')!.keyLine,
      `${map.nameOf('webDownload')} is for upload: web-download only`,
    );
  w.required('listen');
  const listen = w.string('listen', 'HOST:PORT')!;
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  const port = m === null ? Number.NaN : Number(m[2]);
  if (m === null || port > 65535)
    throw w.fail(
      w.get('listen')!.value.line,
      `${w.nameOf('listen')} must be HOST:PORT (port 0 picks one)`,
    );
  const url = w.string('url', 'an http(s) URL');
  if (url !== undefined && !/^https?:\/\/[^/@?#\s]+(\/[^?#\s]*)?$/.test(url))
    throw w.fail(
      w.get('url')!.value.line,
      `${w.nameOf('url')} must be an http(s) URL (no user, query or fragment)`,
    );
  return {
    listen: { host: m[1]!.replace(/^\[|\]$/g, ''), port },
    ...(url === undefined ? {} : { baseUrl: url }),
  };
}

/** Reads an OpenStack target (the reader allows OPENSTACK_TARGET_KEYS only). */
export function parseOpenStackTarget(
  map: MapReader,
  name: string,
  streams: readonly string[],
): OpenStackTargetConfig {
  const path = map.path;
  const cloud = parseCloudKeys(map, dirname(path));
  const regions = names(map, 'regions', MAX_REGIONS, NAME, 'a region name') ?? null;
  if (regions !== null && regions.length === 0)
    throw map.fail(map.get('regions')!.value.line, `${map.nameOf('regions')} is empty`);
  if (
    cloud.kind === 'inline' &&
    cloud.cloud.authType === 'none' &&
    regions !== null &&
    regions.length > 1
  )
    throw map.fail(
      map.get('regions')!.value.line,
      `${map.nameOf('regions')}: one endpoint is one region (regions need a cloud and its catalog)`,
    );
  const diskFormat = map.oneOf('diskFormat', GLANCE_DISK_FORMATS) ?? 'qcow2';
  const compressEntry = map.get('compress');
  let compress = false;
  if (compressEntry !== undefined) {
    const v = compressEntry.value;
    if (v.kind !== 'scalar' || typeof v.value !== 'boolean')
      throw map.fail(v.line, `${map.nameOf('compress')} must be true or false`);
    compress = v.value;
    if (compress && diskFormat !== 'qcow2')
      throw map.fail(v.line, `${map.nameOf('compress')} is for diskFormat qcow2 only`);
  }
  const method =
    map.oneOf('upload', ['auto', 'put', 'glance-direct', 'web-download'] as const) ?? 'auto';
  const webDownload = parseWebDownload(map, method === 'web-download');
  const stores = names(map, 'stores', MAX_STORES, NAME, 'a store name') ?? [];
  const visibility =
    map.oneOf('visibility', ['private', 'shared', 'community', 'public'] as const) ?? 'private';
  const members =
    names(map, 'members', MAX_MEMBERS, PROJECT_ID, 'a project id (32 hex digits)') ?? [];
  if (members.length > 0 && visibility !== 'shared')
    throw map.fail(
      map.get('members')!.keyLine,
      `${map.nameOf('members')} needs visibility: shared (Glance shares only shared images)`,
    );
  const tags =
    map.list('tags', MAX_TAGS, (node, n) => {
      const t = scalarString(path, node, n, 'a tag (a string)');
      if (t.length > MAX_TAG)
        throw configInvalid(path, node.line, `${n} is longer than ${MAX_TAG} characters`);
      if (t.startsWith('ferry:'))
        throw configInvalid(path, node.line, `${n}: the ferry: prefix is ferry's own`);
      return t;
    }) ?? [];
  if (new Set(tags).size !== tags.length)
    throw map.fail(map.get('tags')!.value.line, `${map.nameOf('tags')} names a tag twice`);
  const properties = parseProperties(map.map('properties', null));
  const retention = parseRetention(map);
  const targetStreams = parseTargetStreams(map, streams);
  return {
    type: 'openstack',
    name,
    cloud,
    regions,
    glance: {
      diskFormat,
      compress,
      method,
      ...(webDownload === undefined ? {} : { webDownload }),
      stores,
      visibility,
      members,
      tags,
      properties,
    },
    ...(retention === undefined ? {} : { retention }),
    streams: targetStreams,
  };
}
