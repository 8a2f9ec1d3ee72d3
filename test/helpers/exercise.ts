import { type DiskImage, WRITE_CHUNK } from '../../src/disk/index.js';

/**
 * Walks an image the way convert does: the whole allocation map, then every
 * data window read in full. Returns the bytes read. Throws what the reader throws.
 */
export async function exerciseImage(
  image: DiskImage,
  maxBytes = 256 * 1024 * 1024,
): Promise<number> {
  let read = 0;
  let covered = 0;
  for await (const e of image.extents()) {
    if (e.offset !== covered || e.length <= 0)
      throw new Error(`allocation map is not contiguous at ${covered}`);
    covered += e.length;
    if (e.kind !== 'data') continue;
    for (let off = e.offset; off < e.offset + e.length && read < maxBytes; off += WRITE_CHUNK) {
      const len = Math.min(WRITE_CHUNK, e.offset + e.length - off);
      const buf = await image.read(off, len);
      if (buf.length !== len) throw new Error('short read');
      read += len;
    }
  }
  if (covered !== image.virtualSize)
    throw new Error(`allocation map covers ${covered} of ${image.virtualSize}`);
  return read;
}
