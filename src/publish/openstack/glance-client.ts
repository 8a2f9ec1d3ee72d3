/**
 * A typed client of the Glance v2 image API: images (create, get, list,
 * JSON-patch updates, delete), tags, members, discovery (/v2/info/import,
 * /v2/info/stores), image data (PUT /file, PUT /stage) and the interoperable
 * import (glance-direct, web-download, copy-image).
 *
 * Every call sends the session's token (re-fetched once on a 401) and
 * `Accept: application/json`, caps what it reads, and fails with a coded
 * FerryError carrying the HTTP status and Glance's message. Only calls that
 * are safe to repeat are retried (GET, PUT of tags and member status,
 * DELETE, a create with a caller-chosen id); see glance-http.ts.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { FerryError } from '../../errors/index.js';
import { GlanceHttp, type GlanceHttpOptions } from './glance-http.js';
import {
  type GlanceImage,
  type GlanceVisibility,
  hasProperty,
  isGlanceId,
  MAX_PROPERTY_CHARS,
  parseGlanceImage,
} from './glance-image.js';

export type GlanceClientOptions = GlanceHttpOptions;

export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
}

export interface CreateImageInput {
  readonly name: string;
  readonly disk_format: string;
  readonly container_format: string;
  /** A UUID chosen by the caller: the create is then retried safely (a repeat finds the image). */
  readonly id?: string;
  readonly visibility?: GlanceVisibility;
  readonly min_disk?: number;
  readonly min_ram?: number;
  readonly protected?: boolean;
  readonly tags?: readonly string[];
  /** Free string properties (kernel_id, ramdisk_id, os_distro, ferry_stream...). */
  readonly properties?: Readonly<Record<string, string>>;
}

export type PatchValue = string | number | boolean | null;

export type JsonPatchOp =
  | { readonly op: 'add' | 'replace'; readonly path: string; readonly value: PatchValue }
  | { readonly op: 'remove'; readonly path: string };

export interface ImageChanges {
  /** Each key is added when the image lacks it and replaced when it has it. */
  readonly set?: Readonly<Record<string, PatchValue>>;
  /** Each key is removed when present; a missing one is skipped (Glance would answer 409). */
  readonly remove?: readonly string[];
}

/** A list filter: Glance's own (name, status, visibility, owner, member_status, tag...) or any property. */
export type ImageFilter = Readonly<Record<string, string | readonly string[]>>;

export interface ListOptions extends CallOptions {
  /** Images per page, 1 to 1000 (default 100). */
  readonly pageSize?: number;
  /** Pages followed at most (default 50); more is FERRY_GLANCE_RESPONSE, never a silent cut. */
  readonly maxPages?: number;
  readonly sortKey?: string;
  readonly sortDir?: 'asc' | 'desc';
}

export type MemberStatus = 'pending' | 'accepted' | 'rejected';

export interface GlanceMember {
  readonly image_id: string;
  readonly member_id: string;
  readonly status: MemberStatus;
}

export interface GlanceStore {
  readonly id: string;
  readonly isDefault: boolean;
  readonly description: string | null;
}

export type ImportMethod = 'glance-direct' | 'web-download' | 'copy-image';

export interface ImportRequest {
  readonly method: ImportMethod;
  /** web-download: the URL Glance fetches. */
  readonly uri?: string;
  /** The stores to import or copy into (multi-store clouds). */
  readonly stores?: readonly string[];
  /** Every store the cloud has (instead of `stores`). */
  readonly allStores?: boolean;
  /** Fail the import when one store fails (Glance's default: true). */
  readonly allStoresMustSucceed?: boolean;
}

export interface DataOptions extends CallOptions {
  /** The data; it must produce exactly `size` bytes. */
  readonly body: Readable;
  readonly size: number;
  /** Told each chunk before it is written (hash it, count it). */
  readonly onChunk?: (chunk: Buffer, sent: number) => void;
}

const MAX_PAGE_SIZE = 1000;
const MAX_NEXT_CHARS = 8192;
const MAX_MEMBERS = 10_000;

function checkId(id: string, action: string): string {
  if (!isGlanceId(id))
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot ${action}: "${id.slice(0, 80)}" is not an image id`,
    );
  return id;
}

function badAnswer(action: string, reason: string): FerryError {
  return new FerryError('FERRY_GLANCE_RESPONSE', `Cannot ${action}: ${reason}`);
}

function record(body: unknown, action: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badAnswer(action, 'the answer is not a JSON object');
  return body as Record<string, unknown>;
}

/** A JSON pointer for a top-level property name. */
function pointer(key: string): string {
  if (key === '' || key.length > 255)
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot patch the image: "${key.slice(0, 80)}" is not a property name`,
    );
  return `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

export class GlanceClient {
  readonly http: GlanceHttp;

  constructor(options: GlanceClientOptions) {
    this.http = new GlanceHttp(options);
  }

  /** Closes pooled connections (the client may still be used; it reconnects). */
  close(): void {
    this.http.close();
  }

  async createImage(input: CreateImageInput, options: CallOptions = {}): Promise<GlanceImage> {
    const action = 'create the image';
    const body: Record<string, unknown> = { ...(input.properties ?? {}) };
    body.name = input.name;
    body.disk_format = input.disk_format;
    body.container_format = input.container_format;
    if (input.id !== undefined) body.id = checkId(input.id, action);
    if (input.visibility !== undefined) body.visibility = input.visibility;
    if (input.min_disk !== undefined) body.min_disk = input.min_disk;
    if (input.min_ram !== undefined) body.min_ram = input.min_ram;
    if (input.protected !== undefined) body.protected = input.protected;
    if (input.tags !== undefined) body.tags = [...input.tags];
    try {
      const res = await this.http.json({
        method: 'POST',
        path: '/v2/images',
        body,
        expect: [201],
        idempotent: input.id !== undefined,
        signal: options.signal,
      });
      return parseGlanceImage(res.body);
    } catch (error) {
      // A repeated create with our own id: the first one went through.
      if (
        input.id !== undefined &&
        error instanceof FerryError &&
        error.code === 'FERRY_GLANCE_CONFLICT'
      ) {
        const found = await this.getImage(input.id, options);
        if (found !== null && found.name === input.name) return found;
      }
      throw error;
    }
  }

  /** The image, or null when Glance does not know it (404). */
  async getImage(id: string, options: CallOptions = {}): Promise<GlanceImage | null> {
    checkId(id, 'get the image');
    const res = await this.http.json({
      method: 'GET',
      path: `/v2/images/${id}`,
      expect: [200, 404],
      idempotent: true,
      signal: options.signal,
    });
    return res.status === 404 ? null : parseGlanceImage(res.body);
  }

  /** Every image matching `filter`, following Glance's `next` links up to maxPages. */
  async listImages(filter: ImageFilter = {}, options: ListOptions = {}): Promise<GlanceImage[]> {
    const action = 'list images';
    const pageSize = options.pageSize ?? 100;
    const maxPages = options.maxPages ?? 50;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot ${action}: pageSize ${pageSize} is not 1 to ${MAX_PAGE_SIZE}`,
      );
    if (!Number.isInteger(maxPages) || maxPages < 1)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot ${action}: maxPages ${maxPages} is not a positive whole number`,
      );
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) {
      for (const v of typeof value === 'string' ? [value] : value) query.append(key, v);
    }
    query.set('limit', String(pageSize));
    if (options.sortKey !== undefined) query.set('sort_key', options.sortKey);
    if (options.sortDir !== undefined) query.set('sort_dir', options.sortDir);
    let path: string | null = `/v2/images?${query}`;
    const images: GlanceImage[] = [];
    const seen = new Set<string>();
    for (let page = 1; path !== null; page++) {
      if (page > maxPages)
        throw new FerryError(
          'FERRY_GLANCE_RESPONSE',
          `Cannot ${action}: more than ${maxPages} pages`,
          {
            details: { maxPages, pageSize },
            hint: 'Narrow the filter or raise maxPages.',
          },
        );
      const res = await this.http.json({
        method: 'GET',
        path,
        expect: [200],
        idempotent: true,
        signal: options.signal,
      });
      const o = record(res.body, action);
      const list = o.images;
      if (!Array.isArray(list)) throw badAnswer(action, 'the answer has no images list');
      if (list.length > pageSize)
        throw badAnswer(action, `a page holds ${list.length} images, over the ${pageSize} asked`);
      for (const raw of list) {
        const image = parseGlanceImage(raw);
        // A server that loops its markers would page forever: a repeat ends it.
        if (seen.has(image.id))
          throw badAnswer(action, `image ${image.id} came twice (the pages loop)`);
        seen.add(image.id);
        images.push(image);
      }
      path = nextPath(o.next, action);
      if (list.length === 0) path = null;
    }
    return images;
  }

  /** Applies a JSON patch as is (application/openstack-images-v2.1-json-patch). Not retried. */
  async patchImage(
    id: string,
    ops: readonly JsonPatchOp[],
    options: CallOptions = {},
  ): Promise<GlanceImage> {
    checkId(id, 'patch the image');
    const res = await this.http.json({
      method: 'PATCH',
      path: `/v2/images/${id}`,
      body: ops,
      contentType: 'application/openstack-images-v2.1-json-patch',
      expect: [200],
      idempotent: false,
      signal: options.signal,
    });
    return parseGlanceImage(res.body);
  }

  /**
   * Sets and removes properties, choosing add or replace from the image as
   * it is now (`current`, or read first). Nothing to change: no request.
   */
  async updateImage(
    id: string,
    changes: ImageChanges,
    options: CallOptions & { readonly current?: GlanceImage } = {},
  ): Promise<GlanceImage> {
    const action = 'update the image';
    const current = options.current ?? (await this.getImage(id, options));
    if (current === null)
      throw new FerryError('FERRY_NOT_FOUND', `Cannot ${action}: image ${id} does not exist`, {
        details: { id },
      });
    const ops: JsonPatchOp[] = [];
    for (const [key, value] of Object.entries(changes.set ?? {})) {
      if (typeof value === 'string' && value.length > MAX_PROPERTY_CHARS)
        throw new FerryError(
          'FERRY_USAGE',
          `Cannot ${action}: ${key} is over ${MAX_PROPERTY_CHARS} characters`,
        );
      if (Object.hasOwn(current.properties, key) && current.properties[key] === value) continue;
      ops.push({ op: hasProperty(current, key) ? 'replace' : 'add', path: pointer(key), value });
    }
    for (const key of changes.remove ?? []) {
      if (Object.hasOwn(current.properties, key)) ops.push({ op: 'remove', path: pointer(key) });
    }
    if (ops.length === 0) return current;
    return this.patchImage(id, ops, options);
  }

  async addTag(id: string, tag: string, options: CallOptions = {}): Promise<void> {
    await this.#tag('PUT', id, tag, options);
  }

  /** Removes a tag; a tag the image lacks is no error. */
  async removeTag(id: string, tag: string, options: CallOptions = {}): Promise<void> {
    await this.#tag('DELETE', id, tag, options);
  }

  async #tag(
    method: 'PUT' | 'DELETE',
    id: string,
    tag: string,
    options: CallOptions,
  ): Promise<void> {
    checkId(id, 'tag the image');
    // A "/" cannot travel in the path: Glance's router decodes %2F and finds no route.
    if (tag === '' || tag.length > 255 || tag.includes('/'))
      throw new FerryError(
        'FERRY_USAGE',
        'Cannot tag the image: a tag is 1 to 255 characters, without "/"',
      );
    await this.http.json({
      method,
      path: `/v2/images/${id}/tags/${encodeURIComponent(tag)}`,
      expect: method === 'PUT' ? [204] : [204, 404],
      idempotent: true,
      signal: options.signal,
    });
  }

  /** Shares an image with a project (the member then accepts it, acting as that project). */
  async addMember(id: string, project: string, options: CallOptions = {}): Promise<GlanceMember> {
    checkId(id, 'share the image');
    const res = await this.http.json({
      method: 'POST',
      path: `/v2/images/${id}/members`,
      body: { member: project },
      expect: [200],
      idempotent: false,
      signal: options.signal,
    });
    return parseMember(res.body, 'share the image');
  }

  /** Accepts (or rejects) a shared image; the caller acts as the member project. */
  async setMemberStatus(
    id: string,
    project: string,
    status: MemberStatus,
    options: CallOptions = {},
  ): Promise<GlanceMember> {
    checkId(id, 'answer the image share');
    const res = await this.http.json({
      method: 'PUT',
      path: `/v2/images/${id}/members/${encodeURIComponent(project)}`,
      body: { status },
      expect: [200],
      idempotent: true,
      signal: options.signal,
    });
    return parseMember(res.body, 'answer the image share');
  }

  async listMembers(id: string, options: CallOptions = {}): Promise<GlanceMember[]> {
    const action = 'list the image members';
    checkId(id, action);
    const res = await this.http.json({
      method: 'GET',
      path: `/v2/images/${id}/members`,
      expect: [200],
      idempotent: true,
      signal: options.signal,
    });
    const members = record(res.body, action).members;
    if (!Array.isArray(members) || members.length > MAX_MEMBERS)
      throw badAnswer(action, 'no members list');
    return members.map((m) => parseMember(m, action));
  }

  /** Downloads an active image's data into the file `to` (at most its size); returns the bytes. */
  async downloadData(id: string, to: string, options: CallOptions = {}): Promise<number> {
    checkId(id, 'download the image');
    const image = await this.getImage(id, options);
    if (image === null || image.status !== 'active' || image.size === null)
      throw new FerryError(
        'FERRY_GLANCE_CONFLICT',
        `Cannot download image ${id}: it is ${image === null ? 'not there' : image.status}`,
      );
    const out = createWriteStream(to, { flags: 'wx' });
    try {
      const got = await this.http.download(`/v2/images/${id}/file`, out, {
        maxBytes: image.size,
        signal: options.signal,
      });
      if (got !== image.size)
        throw badAnswer('download the image', `Glance sent ${got} bytes of ${image.size}`);
      return got;
    } catch (error) {
      out.destroy();
      await rm(to, { force: true });
      throw error;
    }
  }

  /** Deletes an image; false when it was already gone. */
  async deleteImage(id: string, options: CallOptions = {}): Promise<boolean> {
    checkId(id, 'delete the image');
    const res = await this.http.json({
      method: 'DELETE',
      path: `/v2/images/${id}`,
      expect: [204, 404],
      idempotent: true,
      signal: options.signal,
    });
    return res.status === 204;
  }

  /** The import methods the server offers (/v2/info/import). */
  async importMethods(options: CallOptions = {}): Promise<string[]> {
    const action = 'read the import methods';
    const res = await this.http.json({
      method: 'GET',
      path: '/v2/info/import',
      expect: [200],
      idempotent: true,
      signal: options.signal,
    });
    const methods = record(record(res.body, action)['import-methods'] ?? null, action).value;
    if (
      !Array.isArray(methods) ||
      methods.length > 64 ||
      methods.some((m) => typeof m !== 'string' || m.length > 64)
    )
      throw badAnswer(action, 'import-methods.value is not a list of names');
    return methods as string[];
  }

  /** The stores of a multi-store cloud (/v2/info/stores); [] when it has one unnamed store (404). */
  async stores(options: CallOptions = {}): Promise<GlanceStore[]> {
    const action = 'read the stores';
    const res = await this.http.json({
      method: 'GET',
      path: '/v2/info/stores',
      expect: [200, 404],
      idempotent: true,
      signal: options.signal,
    });
    if (res.status === 404) return [];
    const stores = record(res.body, action).stores;
    if (!Array.isArray(stores) || stores.length > 256)
      throw badAnswer(action, 'stores is not a list');
    return stores.map((raw) => {
      const s = record(raw, action);
      if (typeof s.id !== 'string' || s.id === '' || s.id.length > 255)
        throw badAnswer(action, 'a store has no id');
      const d = s.default;
      return {
        id: s.id,
        isDefault: d === true || d === 'true',
        description: typeof s.description === 'string' ? s.description.slice(0, 1024) : null,
      };
    });
  }

  /** Streams the image data (PUT /file, 204). Not retried: see glance-upload.ts. */
  async uploadData(id: string, data: DataOptions): Promise<void> {
    checkId(id, 'upload the image data');
    await this.http.stream({
      method: 'PUT',
      path: `/v2/images/${id}/file`,
      body: data.body,
      size: data.size,
      expect: [204],
      ...(data.onChunk === undefined ? {} : { onChunk: data.onChunk }),
      signal: data.signal,
    });
  }

  /** Streams the image data to the staging area (PUT /stage, 204), for a glance-direct import. */
  async stageData(id: string, data: DataOptions): Promise<void> {
    checkId(id, 'stage the image data');
    await this.http.stream({
      method: 'PUT',
      path: `/v2/images/${id}/stage`,
      body: data.body,
      size: data.size,
      expect: [204],
      ...(data.onChunk === undefined ? {} : { onChunk: data.onChunk }),
      signal: data.signal,
    });
  }

  /** Starts an import (POST /import, 202); the image then goes importing, then active. */
  async importImage(id: string, request: ImportRequest, options: CallOptions = {}): Promise<void> {
    const action = `import the image by ${request.method}`;
    checkId(id, action);
    const method: Record<string, string> = { name: request.method };
    if (request.method === 'web-download') {
      if (
        request.uri === undefined ||
        !/^https?:\/\//.test(request.uri) ||
        request.uri.length > 2048
      )
        throw new FerryError(
          'FERRY_USAGE',
          `Cannot ${action}: web-download needs an http or https uri`,
        );
      method.uri = request.uri;
    }
    const body: Record<string, unknown> = { method };
    if (request.stores !== undefined) body.stores = [...request.stores];
    if (request.allStores !== undefined) body.all_stores = request.allStores;
    if (request.allStoresMustSucceed !== undefined)
      body.all_stores_must_succeed = request.allStoresMustSucceed;
    await this.http.json({
      method: 'POST',
      path: `/v2/images/${id}/import`,
      body,
      expect: [202],
      idempotent: false,
      signal: options.signal,
    });
  }
}

function nextPath(next: unknown, action: string): string | null {
  if (next === undefined || next === null) return null;
  // Only a path on this server, under /v2/images: a link elsewhere is refused.
  if (
    typeof next !== 'string' ||
    next.length > MAX_NEXT_CHARS ||
    !/^\/v2\/images\?[^#\s]*$/.test(next)
  )
    throw badAnswer(action, 'the next link is not a /v2/images path on this server');
  return next;
}

function parseMember(raw: unknown, action: string): GlanceMember {
  const m = record(raw, action);
  const { image_id, member_id, status } = m;
  if (
    typeof image_id !== 'string' ||
    typeof member_id !== 'string' ||
    member_id.length > 255 ||
    (status !== 'pending' && status !== 'accepted' && status !== 'rejected')
  )
    throw badAnswer(action, 'a member is not {image_id, member_id, status}');
  return { image_id, member_id, status };
}
