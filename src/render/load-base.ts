import { readFile } from 'node:fs/promises';
import { type DiskImage, openImage } from '../disk/index.js';
import { FerryError } from '../errors/index.js';

/** Where a render's block map lives. */
export function mapPathOf(image: string): string {
  return `${image}.ferry-map.json`;
}

/**
 * Opens a previous render and its block map, checked by `check`, which also
 * says how many bytes the map covers: an image shorter than that is refused.
 */
export async function loadBase<M>(
  path: string,
  what: string,
  check: (raw: unknown) => { map: M; bytes: number },
): Promise<{ image: DiskImage; map: M }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(mapPathOf(path), 'utf8'));
  } catch (error) {
    throw new FerryError(
      'FERRY_RENDER_INPUT',
      `Cannot use ${path} as a base: its block map ${mapPathOf(path)} is missing or not JSON`,
      {
        cause: error,
        hint: `A base must be ${what} ferry rendered, with its .ferry-map.json beside it`,
      },
    );
  }
  const { map, bytes } = check(raw);
  const image = await openImage(path);
  if (image.virtualSize < bytes) {
    await image.close();
    throw new FerryError(
      'FERRY_RENDER_INPUT',
      `Cannot use ${path} as a base: it is smaller than its block map says`,
    );
  }
  return { image, map };
}
