/**
 * A Glance v2 image as ferry sees it, read from Glance's JSON with every
 * field checked: an answer is hostile input until it has passed here.
 */
import { FerryError } from '../../errors/index.js';

export const GLANCE_STATUSES = [
  'queued',
  'saving',
  'uploading',
  'importing',
  'active',
  'killed',
  'deleted',
  'pending_delete',
  'deactivated',
] as const;
export type GlanceStatus = (typeof GLANCE_STATUSES)[number];

export type GlanceVisibility = 'public' | 'private' | 'shared' | 'community';

export interface GlanceImage {
  readonly id: string;
  readonly name: string | null;
  readonly status: GlanceStatus;
  readonly disk_format: string | null;
  readonly container_format: string | null;
  readonly size: number | null;
  readonly virtual_size: number | null;
  /** md5, hex. */
  readonly checksum: string | null;
  readonly os_hash_algo: string | null;
  readonly os_hash_value: string | null;
  readonly visibility: GlanceVisibility;
  readonly protected: boolean;
  readonly tags: readonly string[];
  readonly owner: string | null;
  /** The stores holding the data (Glance sends them comma-separated). */
  readonly stores: readonly string[];
  readonly created_at: string | null;
  readonly updated_at: string | null;
  /** Every other property whose value is a string (kernel_id, os_distro, ferry_*, os_glance_*...). */
  readonly properties: Readonly<Record<string, string>>;
}

/** Limits on what one image may carry. */
export const MAX_IMAGE_PROPERTIES = 1024;
export const MAX_PROPERTY_CHARS = 65_536;
export const MAX_TAGS = 1024;
export const MAX_STORES = 256;

const ID = /^[0-9A-Za-z-]{1,64}$/;

/** Fields of the image schema that are not free string properties. */
const CORE = new Set([
  'id',
  'name',
  'status',
  'disk_format',
  'container_format',
  'size',
  'virtual_size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'visibility',
  'protected',
  'tags',
  'owner',
  'stores',
  'created_at',
  'updated_at',
  'min_ram',
  'min_disk',
  'os_hidden',
  'self',
  'file',
  'schema',
  'locations',
  'direct_url',
]);

export function isGlanceId(value: string): boolean {
  return ID.test(value);
}

function bad(what: string, detail: string): FerryError {
  return new FerryError(
    'FERRY_GLANCE_RESPONSE',
    `Cannot read the image from Glance: ${what} ${detail}`,
    {
      details: { field: what },
    },
  );
}

function str(o: Record<string, unknown>, key: string, nullable: true): string | null;
function str(o: Record<string, unknown>, key: string, nullable: false): string;
function str(o: Record<string, unknown>, key: string, nullable: boolean): string | null {
  const v = o[key];
  if ((v === null || v === undefined) && nullable) return null;
  if (typeof v !== 'string') throw bad(key, 'is not a string');
  if (v.length > MAX_PROPERTY_CHARS) throw bad(key, `is over ${MAX_PROPERTY_CHARS} characters`);
  return v;
}

function size(o: Record<string, unknown>, key: string): number | null {
  const v = o[key];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw bad(key, 'is not a whole number of bytes');
  return v;
}

/** Checks and types one image object of Glance's JSON. */
export function parseGlanceImage(raw: unknown): GlanceImage {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw bad('image', 'is not an object');
  const o = raw as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length > MAX_IMAGE_PROPERTIES + CORE.size)
    throw bad('image', `has over ${MAX_IMAGE_PROPERTIES} properties`);
  const id = str(o, 'id', false);
  if (!isGlanceId(id)) throw bad('id', 'is not an image id');
  const status = str(o, 'status', false);
  if (!(GLANCE_STATUSES as readonly string[]).includes(status))
    throw bad('status', `"${status.slice(0, 40)}" is not a Glance image status`);
  const visibility = str(o, 'visibility', false);
  if (!['public', 'private', 'shared', 'community'].includes(visibility))
    throw bad('visibility', 'is not public, private, shared or community');
  const tagsRaw = o.tags ?? [];
  if (
    !Array.isArray(tagsRaw) ||
    tagsRaw.length > MAX_TAGS ||
    tagsRaw.some((t) => typeof t !== 'string' || t.length > 255)
  )
    throw bad('tags', 'is not a list of tags');
  const storesRaw = o.stores;
  let stores: string[] = [];
  if (typeof storesRaw === 'string') {
    stores = storesRaw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (stores.length > MAX_STORES || storesRaw.length > MAX_PROPERTY_CHARS)
      throw bad('stores', 'lists too many stores');
  } else if (storesRaw !== undefined && storesRaw !== null) throw bad('stores', 'is not a string');
  const prot = o.protected ?? false;
  if (typeof prot !== 'boolean') throw bad('protected', 'is not true or false');
  const properties: Record<string, string> = {};
  for (const key of keys) {
    if (CORE.has(key)) continue;
    const v = o[key];
    if (typeof v !== 'string') continue;
    if (key.length > 255) throw bad('property name', 'is over 255 characters');
    if (v.length > MAX_PROPERTY_CHARS) throw bad(key, `is over ${MAX_PROPERTY_CHARS} characters`);
    properties[key] = v;
  }
  return {
    id,
    name: str(o, 'name', true),
    status: status as GlanceStatus,
    disk_format: str(o, 'disk_format', true),
    container_format: str(o, 'container_format', true),
    size: size(o, 'size'),
    virtual_size: size(o, 'virtual_size'),
    checksum: str(o, 'checksum', true),
    os_hash_algo: str(o, 'os_hash_algo', true),
    os_hash_value: str(o, 'os_hash_value', true),
    visibility: visibility as GlanceVisibility,
    protected: prot,
    tags: tagsRaw as string[],
    owner: str(o, 'owner', true),
    stores,
    created_at: str(o, 'created_at', true),
    updated_at: str(o, 'updated_at', true),
    properties,
  };
}

/**
 * Whether a JSON patch of `key` must "replace" (a schema field, always
 * present, or a property the image has) rather than "add".
 */
export function hasProperty(image: GlanceImage, key: string): boolean {
  return CORE.has(key) || Object.hasOwn(image.properties, key);
}
