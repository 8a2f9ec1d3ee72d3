/**
 * The image endpoint of a Keystone token's catalog: the service of type
 * `image`, by region and interface. The catalog is checked (shape, counts,
 * http(s) URLs without credentials) before it is used.
 */
import { FerryError } from '../../errors/index.js';
import { badResponse } from './keystone-http.js';
import type { OpenStackInterface } from './openstack-cloud.js';

const MAX_SERVICES = 1000;
const MAX_ENDPOINTS = 10_000;

interface Endpoint {
  readonly region: string | null;
  readonly interface: string;
  readonly url: string;
}

/** The image service's endpoints of a token's catalog, checked. */
function imageEndpoints(catalog: unknown, url: string): { endpoints: Endpoint[]; types: string[] } {
  if (!Array.isArray(catalog)) throw badResponse(url, 'the token has no catalog');
  if (catalog.length > MAX_SERVICES)
    throw badResponse(url, `the catalog has more than ${MAX_SERVICES} services`);
  const endpoints: Endpoint[] = [];
  const types: string[] = [];
  let count = 0;
  for (const service of catalog as unknown[]) {
    const s = service as { type?: unknown; endpoints?: unknown } | null;
    if (typeof s !== 'object' || s === null || typeof s.type !== 'string' || s.type.length > 255)
      throw badResponse(url, 'a catalog service has no type');
    types.push(s.type);
    if (s.type !== 'image') continue;
    if (!Array.isArray(s.endpoints))
      throw badResponse(url, 'the image service has no endpoint list');
    count += s.endpoints.length;
    if (count > MAX_ENDPOINTS)
      throw badResponse(url, `the catalog has more than ${MAX_ENDPOINTS} image endpoints`);
    for (const endpoint of s.endpoints as unknown[]) {
      const e = endpoint as {
        interface?: unknown;
        region_id?: unknown;
        region?: unknown;
        url?: unknown;
      };
      if (
        typeof e !== 'object' ||
        e === null ||
        typeof e.interface !== 'string' ||
        typeof e.url !== 'string'
      )
        throw badResponse(url, 'an image endpoint has no interface or URL');
      const region =
        typeof e.region_id === 'string'
          ? e.region_id
          : typeof e.region === 'string'
            ? e.region
            : null;
      endpoints.push({ region, interface: e.interface, url: e.url });
    }
  }
  return { endpoints, types };
}

/** An image URL without its version path (Glance's catalog entries may or may not have one). */
export function imageBaseUrl(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.username !== '' ||
    url.password !== ''
  )
    return null;
  url.search = '';
  url.hash = '';
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/v\d+(\.\d+)?$/, '');
  return url.toString().replace(/\/+$/, '');
}

/**
 * The image endpoint of `catalog` for `region` (null: the only region that
 * has one) and `iface`. FERRY_OPENSTACK_NO_ENDPOINT lists what there is.
 */
export function findImageEndpoint(
  catalog: unknown,
  region: string | null,
  iface: OpenStackInterface,
  keystoneUrl = 'Keystone',
): string {
  const { endpoints, types } = imageEndpoints(catalog, keystoneUrl);
  const fail = (reason: string, hint?: string) =>
    new FerryError('FERRY_OPENSTACK_NO_ENDPOINT', `Cannot find the image endpoint: ${reason}`, {
      details: { region, interface: iface },
      ...(hint === undefined ? {} : { hint }),
    });
  const have = (list: readonly Endpoint[]) =>
    list
      .slice(0, 20)
      .map((e) => `${e.region ?? '(no region)'} ${e.interface}`)
      .join(', ');
  if (endpoints.length === 0)
    throw fail(
      `the catalog has no image service (it has: ${[...new Set(types)].slice(0, 30).join(', ') || 'nothing'})`,
      'Give the image endpoint explicitly, or ask the cloud operator.',
    );
  const inRegion = region === null ? endpoints : endpoints.filter((e) => e.region === region);
  if (inRegion.length === 0)
    throw fail(`no image endpoint in region "${region}" (the catalog has: ${have(endpoints)})`);
  const matching = inRegion.filter((e) => e.interface === iface);
  if (matching.length === 0)
    throw fail(
      `no ${iface} image endpoint${region === null ? '' : ` in region "${region}"`} (the catalog has: ${have(endpoints)})`,
    );
  const regions = new Set(matching.map((e) => e.region));
  if (regions.size > 1)
    throw fail(
      `several regions have a ${iface} image endpoint (${[...regions].join(', ')}) and none was named`,
      "Name the region (region_name in clouds.yaml, or the target's regions).",
    );
  const base = imageBaseUrl(matching[0]!.url);
  if (base === null) throw badResponse(keystoneUrl, 'the image endpoint is not an http(s) URL');
  return base;
}
