import { readFile, stat } from 'node:fs/promises';
import { type DiskImage, openImage } from '../disk/index.js';
import { FerryError } from '../errors/index.js';
import { checkChunks } from './chunk-digest.js';

/** Where a render's block map lives. */
export function mapPathOf(image: string): string {
  return `${image}.ferry-map.json`;
}

/** Largest block map read (a 100,000-path, 100 GiB render's is about 40 MiB). */
const MAX_MAP_BYTES = 256 * 1024 * 1024;

/** A previous render: its image (null when given as its map alone), its map and chunk digests. */
export interface Base<M> {
  readonly image: DiskImage | null;
  readonly map: M;
  readonly chunks?: ReadonlyMap<number, string>;
}

function refuse(path: string, reason: string, what: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_RENDER_INPUT', `Cannot use ${path} as a base: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: `A base is ${what} ferry rendered (with its .ferry-map.json beside it), or that map alone`,
  });
}

/**
 * Opens a previous render: a path ending in .json is its block map alone
 * (the image need not be at hand; the map must then carry chunk digests),
 * anything else is the image, with its map beside it. `check` checks the
 * map and says how many bytes it covers: an image shorter than that is refused.
 */
export async function loadBase<M>(
  path: string,
  what: string,
  check: (raw: unknown) => { map: M; bytes: number },
): Promise<Base<M>> {
  const mapOnly = path.endsWith('.json');
  const mapPath = mapOnly ? path : mapPathOf(path);
  const size = await stat(mapPath).then(
    (st) => st.size,
    () => 0,
  );
  if (size > MAX_MAP_BYTES)
    throw new FerryError(
      'FERRY_RENDER_LIMIT',
      `Cannot use ${path} as a base: its block map is ${size} bytes, over the ${MAX_MAP_BYTES}-byte cap`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(mapPath, 'utf8'));
  } catch (error) {
    throw refuse(path, `its block map ${mapPath} is missing or not JSON`, what, error);
  }
  const { map, bytes } = check(raw);
  const chunks = checkChunks((raw as { chunkDigests?: unknown }).chunkDigests, bytes, (reason) =>
    refuse(path, `its block map is malformed: ${reason}`, what),
  );
  if (mapOnly) {
    if (chunks === undefined)
      throw refuse(path, 'the map has no chunk digests (an older render): pass its image', what);
    return { image: null, map, chunks };
  }
  const image = await openImage(path);
  if (image.virtualSize < bytes) {
    await image.close();
    throw refuse(path, 'it is smaller than its block map says', what);
  }
  return { image, map, ...(chunks === undefined ? {} : { chunks }) };
}
